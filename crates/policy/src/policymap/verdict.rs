//! What a policy lookup answers: the deciding entry, the verdict, Hubble's match type and
//! Cilium's drop reasons.

use super::{DnsAllow, PolicyAction, PolicyKey};

/// Declares an enum of values Cilium numbers: each variant with its code and its name, and
/// `ALL` (every variant, by code), `code`, `from_code` and the method that names a value.
macro_rules! coded_enum {
    (
        $(#[$meta:meta])*
        pub enum $enum:ident {
            $( $(#[doc = $doc:literal])* $variant:ident = $code:literal => $text:literal, )+
        }
        $(#[$name_meta:meta])*
        fn $name_fn:ident;
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum $enum {
            $(
                #[doc = concat!("`", $text, "` (", stringify!($code), "):")]
                $(#[doc = $doc])*
                $variant = $code,
            )+
        }

        impl $enum {
            /// Every value, by code.
            // (Its length: as many as there are codes.)
            pub const ALL: [Self; [$($code),+].len()] = [$(Self::$variant),+];

            /// The numeric code.
            pub fn code(self) -> u8 {
                self as u8
            }

            /// The value with this code, if it is one of these.
            pub fn from_code(code: u8) -> Option<Self> {
                Self::ALL.into_iter().find(|v| v.code() == code)
            }

            $(#[$name_meta])*
            pub fn $name_fn(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }
    };
}

coded_enum! {
    /// Hubble's `policy_match_type` values. The code is Cilium's, and the eBPF flow event's
    /// `match_type`; 0 is "none".
    pub enum MatchType {
        /// identity, any protocol.
        L3Only = 1 => "L3_ONLY",
        /// identity, protocol and port.
        L3L4 = 2 => "L3_L4",
        /// any identity, protocol and port.
        L4Only = 3 => "L4_ONLY",
        /// any identity, any protocol.
        All = 4 => "ALL",
        /// identity and protocol, any port.
        L3Proto = 5 => "L3_PROTO",
        /// any identity, protocol, any port.
        ProtoOnly = 6 => "PROTO_ONLY",
    }
    /// Its name in Hubble's flow API (`policy_match_type`): `L3_L4`, ...
    fn name;
}

impl MatchType {
    /// How `hubble observe` shows a verdict's match (`policy-verdict:L3-L4`); `none` when
    /// no entry matched.
    pub fn verdict_label(m: Option<Self>) -> &'static str {
        match m {
            Some(Self::L3Only) => "L3-Only",
            Some(Self::L3L4) => "L3-L4",
            Some(Self::L4Only) => "L4-Only",
            Some(Self::All) => "all",
            Some(Self::L3Proto) => "L3-Proto",
            Some(Self::ProtoOnly) => "Proto-Only",
            None => "none",
        }
    }
}

coded_enum! {
    /// Why a packet was dropped, numbered as Cilium's drop reasons (Hubble's `DropReason`).
    #[non_exhaustive]
    pub enum DropReason {
        /// the packet's source is no known endpoint.
        InvalidSourceIp = 132 => "INVALID_SOURCE_IP",
        /// no entry allows it.
        PolicyDenied = 133 => "POLICY_DENIED",
        /// a malformed IP header.
        InvalidPacket = 134 => "INVALID_PACKET_DROPPED",
        /// the transport header is cut short.
        CtTruncatedOrInvalidHeader = 135 => "CT_TRUNCATED_OR_INVALID_HEADER",
        /// neither IPv4, IPv6 nor ARP.
        UnsupportedL3Protocol = 139 => "UNSUPPORTED_L3_PROTOCOL",
        /// the flow could not be tracked.
        CtMapInsertionFailed = 155 => "CT_MAP_INSERTION_FAILED",
        /// no next header, or more extension headers than the datapath walks.
        InvalidIpv6ExtensionHeader = 156 => "INVALID_IPV6_EXTENSION_HEADER",
        /// a fragment without the transport header.
        IpFragmentationNotSupported = 157 => "IP_FRAGMENTATION_NOT_SUPPORTED",
        /// a deny entry matched.
        PolicyDeny = 181 => "POLICY_DENY",
    }
    /// Hubble's `drop_reason_desc`.
    fn desc;
}

/// The outcome of a policy lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyVerdict {
    /// Forwarded by the entry at `key`.
    Allowed {
        /// The chosen key.
        key: PolicyKey,
        /// How it matched.
        match_type: MatchType,
    },
    /// Forwarded to the DNS proxy.
    Redirected {
        /// The chosen key.
        key: PolicyKey,
        /// How it matched.
        match_type: MatchType,
        /// The names the proxy allows.
        dns: DnsAllow,
    },
    /// Dropped.
    Dropped {
        /// Why.
        reason: DropReason,
        /// The deny entry's key, if one matched.
        key: Option<PolicyKey>,
    },
}

/// The entry of a policy map that decides a packet
/// ([`PolicyMap::decide`](super::PolicyMap::decide)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision<'a> {
    /// Its key.
    pub key: PolicyKey,
    /// What it does.
    pub action: &'a PolicyAction,
    /// How it matched.
    pub match_type: MatchType,
}

impl Decision<'_> {
    /// The verdict this entry gives: dropped (`POLICY_DENY`) by a deny, else forwarded, to the
    /// DNS proxy for a DNS redirect ([`PolicyMap::lookup`](super::PolicyMap::lookup)).
    #[inline]
    pub fn verdict(self) -> PolicyVerdict {
        let Self {
            key,
            action,
            match_type,
        } = self;
        match action {
            PolicyAction::Deny => PolicyVerdict::Dropped {
                reason: DropReason::PolicyDeny,
                key: Some(key),
            },
            PolicyAction::Allow => PolicyVerdict::Allowed { key, match_type },
            PolicyAction::RedirectDns(dns) => PolicyVerdict::Redirected {
                key,
                match_type,
                dns: dns.clone(),
            },
        }
    }
}
