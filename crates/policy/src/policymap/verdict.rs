//! What a policy lookup answers: the deciding entry, the verdict, Hubble's match type and
//! Cilium's drop reasons.

use super::{DnsAllow, PolicyAction, PolicyKey};

/// Hubble's `policy_match_type` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MatchType {
    /// `L3_ONLY`: identity, any protocol.
    L3Only = 1,
    /// `L3_L4`: identity, protocol and port.
    L3L4 = 2,
    /// `L4_ONLY`: any identity, protocol and port.
    L4Only = 3,
    /// `ALL`: any identity, any protocol.
    All = 4,
    /// `L3_PROTO`: identity and protocol, any port.
    L3Proto = 5,
    /// `PROTO_ONLY`: any identity, protocol, any port.
    ProtoOnly = 6,
}

impl MatchType {
    /// Every match type, by code.
    pub const ALL: [Self; 6] = [
        Self::L3Only,
        Self::L3L4,
        Self::L4Only,
        Self::All,
        Self::L3Proto,
        Self::ProtoOnly,
    ];

    /// The numeric code (Cilium's, and the eBPF flow event's `match_type`).
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The match type with this code, if it is one of these (0 is "none").
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.code() == code)
    }

    /// Its name in Hubble's flow API (`policy_match_type`): `L3_L4`, ...
    pub fn name(self) -> &'static str {
        match self {
            Self::L3Only => "L3_ONLY",
            Self::L3L4 => "L3_L4",
            Self::L4Only => "L4_ONLY",
            Self::All => "ALL",
            Self::L3Proto => "L3_PROTO",
            Self::ProtoOnly => "PROTO_ONLY",
        }
    }

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

/// Why a packet was dropped, numbered as Cilium's drop reasons (Hubble's `DropReason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum DropReason {
    /// `INVALID_SOURCE_IP` (132): the packet's source is no known endpoint.
    InvalidSourceIp = 132,
    /// `POLICY_DENIED` (133): no entry allows it.
    PolicyDenied = 133,
    /// `INVALID_PACKET_DROPPED` (134): a malformed IP header.
    InvalidPacket = 134,
    /// `CT_TRUNCATED_OR_INVALID_HEADER` (135): the transport header is cut short.
    CtTruncatedOrInvalidHeader = 135,
    /// `UNSUPPORTED_L3_PROTOCOL` (139): neither IPv4, IPv6 nor ARP.
    UnsupportedL3Protocol = 139,
    /// `CT_MAP_INSERTION_FAILED` (155): the flow could not be tracked.
    CtMapInsertionFailed = 155,
    /// `INVALID_IPV6_EXTENSION_HEADER` (156): no next header, or more extension headers than
    /// the datapath walks.
    InvalidIpv6ExtensionHeader = 156,
    /// `IP_FRAGMENTATION_NOT_SUPPORTED` (157): a fragment without the transport header.
    IpFragmentationNotSupported = 157,
    /// `POLICY_DENY` (181): a deny entry matched.
    PolicyDeny = 181,
}

impl DropReason {
    /// Every reason, by code.
    pub const ALL: [Self; 9] = [
        Self::InvalidSourceIp,
        Self::PolicyDenied,
        Self::InvalidPacket,
        Self::CtTruncatedOrInvalidHeader,
        Self::UnsupportedL3Protocol,
        Self::CtMapInsertionFailed,
        Self::InvalidIpv6ExtensionHeader,
        Self::IpFragmentationNotSupported,
        Self::PolicyDeny,
    ];

    /// Hubble's `drop_reason_desc`.
    pub fn desc(self) -> &'static str {
        match self {
            Self::InvalidSourceIp => "INVALID_SOURCE_IP",
            Self::PolicyDenied => "POLICY_DENIED",
            Self::InvalidPacket => "INVALID_PACKET_DROPPED",
            Self::CtTruncatedOrInvalidHeader => "CT_TRUNCATED_OR_INVALID_HEADER",
            Self::UnsupportedL3Protocol => "UNSUPPORTED_L3_PROTOCOL",
            Self::CtMapInsertionFailed => "CT_MAP_INSERTION_FAILED",
            Self::InvalidIpv6ExtensionHeader => "INVALID_IPV6_EXTENSION_HEADER",
            Self::IpFragmentationNotSupported => "IP_FRAGMENTATION_NOT_SUPPORTED",
            Self::PolicyDeny => "POLICY_DENY",
        }
    }

    /// The numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The reason with this code, if it is one of these.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }
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
