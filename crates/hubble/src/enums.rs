//! Hubble's enums, written by their proto names as jsonpb prints them (`"FORWARDED"`,
//! `"POLICY_DENIED"`, `"EGRESS"`).
//!
//! Hubble adds values in every release, so reading never fails on a value this crate does not
//! know: an unknown name is kept as [`Verdict::Other`] (and its like in every enum), an unknown
//! number as [`Verdict::OtherNumber`]; both are written back as read. A known number is read
//! as its variant and written by name, as jsonpb writes it. `null` reads as the zero value,
//! and the zero value (the first variant) is omitted on output, as jsonpb omits it.

use std::fmt;

use serde::de::{self, Unexpected};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares one proto enum: its variants with their numbers and proto names, the two
/// variants that keep what this crate does not know, and its serde in jsonpb's form.
macro_rules! proto_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $zero:ident = $zero_number:literal => $zero_text:literal,
            $( $(#[$vmeta:meta])* $variant:ident = $number:literal => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            #[doc = concat!("`", $zero_text, "` (", stringify!($zero_number), "): the zero value, \
                             omitted on output.")]
            #[default]
            $zero,
            $(
                #[doc = concat!("`", $text, "` (", stringify!($number), ").")]
                $(#[$vmeta])*
                $variant,
            )+
            /// A name this crate does not know, kept as read (never one of the names above).
            Other(String),
            /// A number this crate does not know, kept as read (never one of the numbers above).
            OtherNumber(i32),
        }

        impl $name {
            /// Every named value, in the proto's order.
            pub const NAMED: &'static [Self] = &[Self::$zero, $(Self::$variant),+];

            /// The value of a proto name; [`Self::Other`] for a name this crate does not know.
            pub fn from_name(name: &str) -> Self {
                match name {
                    $zero_text => Self::$zero,
                    $($text => Self::$variant,)+
                    other => Self::Other(other.to_owned()),
                }
            }

            /// The value of a number; [`Self::OtherNumber`] for a number this crate does not
            /// know.
            pub fn from_number(number: i32) -> Self {
                match number {
                    $zero_number => Self::$zero,
                    $($number => Self::$variant,)+
                    other => Self::OtherNumber(other),
                }
            }

            /// The proto name (an unknown name as read); `None` for an unknown number.
            pub fn name(&self) -> Option<&str> {
                match self {
                    Self::$zero => Some($zero_text),
                    $(Self::$variant => Some($text),)+
                    Self::Other(name) => Some(name.as_str()),
                    Self::OtherNumber(_) => None,
                }
            }

            /// The number; `None` for an unknown name.
            pub fn number(&self) -> Option<i32> {
                match self {
                    Self::$zero => Some($zero_number),
                    $(Self::$variant => Some($number),)+
                    Self::Other(_) => None,
                    Self::OtherNumber(number) => Some(*number),
                }
            }

            /// Whether this is the zero value, which jsonpb omits.
            pub fn is_unset(&self) -> bool {
                *self == Self::$zero
            }
        }

        impl fmt::Display for $name {
            /// The proto name, or the number when it has none.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match (self.name(), self) {
                    (Some(name), _) => f.write_str(name),
                    (None, Self::OtherNumber(number)) => write!(f, "{number}"),
                    (None, _) => Ok(()),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    Self::OtherNumber(number) => s.serialize_i32(*number),
                    named => s.serialize_str(named.name().unwrap_or_default()),
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(EnumVisitor {
                    what: stringify!($name),
                    from_name: Self::from_name,
                    from_number: Self::from_number,
                })
            }
        }

        /// Omitted at the zero value; `null` reads as it.
        impl crate::wire::Field for $name {}
    };
}

/// Reads one enum from a name, a number or `null`.
struct EnumVisitor<T> {
    what: &'static str,
    from_name: fn(&str) -> T,
    from_number: fn(i32) -> T,
}

impl<T: Default> EnumVisitor<T> {
    fn number<E: de::Error>(&self, v: i128, unexpected: Unexpected<'_>) -> Result<T, E> {
        i32::try_from(v)
            .map(self.from_number)
            .map_err(|_| E::invalid_value(unexpected, self))
    }
}

impl<T: Default> de::Visitor<'_> for EnumVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (a name or a number)", self.what)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        Ok((self.from_name)(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        self.number(i128::from(v), Unexpected::Unsigned(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        self.number(i128::from(v), Unexpected::Signed(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_none<E: de::Error>(self) -> Result<T, E> {
        Ok(T::default())
    }
}

proto_enum! {
    /// What happened to a flow (`flow.Verdict`).
    Verdict {
        VerdictUnknown = 0 => "VERDICT_UNKNOWN",
        Forwarded = 1 => "FORWARDED",
        Dropped = 2 => "DROPPED",
        Error = 3 => "ERROR",
        Audit = 4 => "AUDIT",
        Redirected = 5 => "REDIRECTED",
        Traced = 6 => "TRACED",
        Translated = 7 => "TRANSLATED",
    }
}

proto_enum! {
    /// The kind of flow (`flow.FlowType`, the field `Type`).
    FlowType {
        UnknownType = 0 => "UNKNOWN_TYPE",
        L3L4 = 1 => "L3_L4",
        L7 = 2 => "L7",
        Sock = 3 => "SOCK",
    }
}

proto_enum! {
    /// Request, response or sample of an L7 flow (`flow.L7FlowType`).
    L7FlowType {
        UnknownL7Type = 0 => "UNKNOWN_L7_TYPE",
        Request = 1 => "REQUEST",
        Response = 2 => "RESPONSE",
        Sample = 3 => "SAMPLE",
    }
}

proto_enum! {
    /// The IP family (`flow.IPVersion`).
    IpVersion {
        IpNotUsed = 0 => "IP_NOT_USED",
        Ipv4 = 1 => "IPv4",
        Ipv6 = 2 => "IPv6",
    }
}

proto_enum! {
    /// The direction of the connection as seen by the endpoint that judged it
    /// (`flow.TrafficDirection`).
    TrafficDirection {
        TrafficDirectionUnknown = 0 => "TRAFFIC_DIRECTION_UNKNOWN",
        Ingress = 1 => "INGRESS",
        Egress = 2 => "EGRESS",
    }
}

proto_enum! {
    /// Where in the datapath a trace event was taken (`flow.TraceObservationPoint`).
    TraceObservationPoint {
        UnknownPoint = 0 => "UNKNOWN_POINT",
        ToProxy = 1 => "TO_PROXY",
        ToHost = 2 => "TO_HOST",
        ToStack = 3 => "TO_STACK",
        ToOverlay = 4 => "TO_OVERLAY",
        ToEndpoint = 101 => "TO_ENDPOINT",
        FromEndpoint = 5 => "FROM_ENDPOINT",
        FromProxy = 6 => "FROM_PROXY",
        FromHost = 7 => "FROM_HOST",
        FromStack = 8 => "FROM_STACK",
        FromOverlay = 9 => "FROM_OVERLAY",
        FromNetwork = 10 => "FROM_NETWORK",
        ToNetwork = 11 => "TO_NETWORK",
        FromCrypto = 12 => "FROM_CRYPTO",
        ToCrypto = 13 => "TO_CRYPTO",
    }
}

proto_enum! {
    /// Connection tracking's view of a traced packet (`flow.TraceReason`).
    TraceReason {
        TraceReasonUnknown = 0 => "TRACE_REASON_UNKNOWN",
        New = 1 => "NEW",
        Established = 2 => "ESTABLISHED",
        Reply = 3 => "REPLY",
        Related = 4 => "RELATED",
        Reopened = 5 => "REOPENED",
        Srv6Encap = 6 => "SRV6_ENCAP",
        Srv6Decap = 7 => "SRV6_DECAP",
        EncryptOverlay = 8 => "ENCRYPT_OVERLAY",
    }
}

proto_enum! {
    /// The authentication a policy required (`flow.AuthType`).
    AuthType {
        Disabled = 0 => "DISABLED",
        Spire = 1 => "SPIRE",
        TestAlwaysFail = 2 => "TEST_ALWAYS_FAIL",
    }
}

proto_enum! {
    /// Where a debug capture was taken (`flow.DebugCapturePoint`).
    DebugCapturePoint {
        DbgCapturePointUnknown = 0 => "DBG_CAPTURE_POINT_UNKNOWN",
        DbgCaptureDelivery = 4 => "DBG_CAPTURE_DELIVERY",
        DbgCaptureFromLb = 5 => "DBG_CAPTURE_FROM_LB",
        DbgCaptureAfterV46 = 6 => "DBG_CAPTURE_AFTER_V46",
        DbgCaptureAfterV64 = 7 => "DBG_CAPTURE_AFTER_V64",
        DbgCaptureProxyPre = 8 => "DBG_CAPTURE_PROXY_PRE",
        DbgCaptureProxyPost = 9 => "DBG_CAPTURE_PROXY_POST",
        DbgCaptureSnatPre = 10 => "DBG_CAPTURE_SNAT_PRE",
        DbgCaptureSnatPost = 11 => "DBG_CAPTURE_SNAT_POST",
    }
}

proto_enum! {
    /// The socket-level service translation point of a `TraceSock` event
    /// (`flow.SocketTranslationPoint`).
    SocketTranslationPoint {
        SockXlatePointUnknown = 0 => "SOCK_XLATE_POINT_UNKNOWN",
        SockXlatePointPreDirectionFwd = 1 => "SOCK_XLATE_POINT_PRE_DIRECTION_FWD",
        SockXlatePointPostDirectionFwd = 2 => "SOCK_XLATE_POINT_POST_DIRECTION_FWD",
        SockXlatePointPreDirectionRev = 3 => "SOCK_XLATE_POINT_PRE_DIRECTION_REV",
        SockXlatePointPostDirectionRev = 4 => "SOCK_XLATE_POINT_POST_DIRECTION_REV",
    }
}

proto_enum! {
    /// The encapsulation of a tunnelled flow (`flow.Tunnel.Protocol`).
    TunnelProtocol {
        Unknown = 0 => "UNKNOWN",
        Vxlan = 1 => "VXLAN",
        Geneve = 2 => "GENEVE",
    }
}

proto_enum! {
    /// Where events were lost (`flow.LostEventSource`).
    LostEventSource {
        UnknownLostEventSource = 0 => "UNKNOWN_LOST_EVENT_SOURCE",
        PerfEventRingBuffer = 1 => "PERF_EVENT_RING_BUFFER",
        ObserverEventsQueue = 2 => "OBSERVER_EVENTS_QUEUE",
        HubbleRingBuffer = 3 => "HUBBLE_RING_BUFFER",
    }
}

proto_enum! {
    /// A node's state in Hubble Relay's view (`relay.NodeState`).
    NodeState {
        UnknownNodeState = 0 => "UNKNOWN_NODE_STATE",
        NodeConnected = 1 => "NODE_CONNECTED",
        NodeUnavailable = 2 => "NODE_UNAVAILABLE",
        NodeGone = 3 => "NODE_GONE",
        NodeError = 4 => "NODE_ERROR",
    }
}

proto_enum! {
    /// Why a packet was dropped (`flow.DropReason`, the field `drop_reason_desc`), numbered as
    /// Cilium's datapath numbers them.
    #[doc(alias = "drop_reason_desc")]
    DropReason {
        DropReasonUnknown = 0 => "DROP_REASON_UNKNOWN",
        InvalidSourceMac = 130 => "INVALID_SOURCE_MAC",
        InvalidDestinationMac = 131 => "INVALID_DESTINATION_MAC",
        InvalidSourceIp = 132 => "INVALID_SOURCE_IP",
        PolicyDenied = 133 => "POLICY_DENIED",
        InvalidPacketDropped = 134 => "INVALID_PACKET_DROPPED",
        CtTruncatedOrInvalidHeader = 135 => "CT_TRUNCATED_OR_INVALID_HEADER",
        CtMissingTcpAckFlag = 136 => "CT_MISSING_TCP_ACK_FLAG",
        CtUnknownL4Protocol = 137 => "CT_UNKNOWN_L4_PROTOCOL",
        CtCannotCreateEntryFromPacket = 138 => "CT_CANNOT_CREATE_ENTRY_FROM_PACKET",
        UnsupportedL3Protocol = 139 => "UNSUPPORTED_L3_PROTOCOL",
        MissedTailCall = 140 => "MISSED_TAIL_CALL",
        ErrorWritingToPacket = 141 => "ERROR_WRITING_TO_PACKET",
        UnknownL4Protocol = 142 => "UNKNOWN_L4_PROTOCOL",
        UnknownIcmpv4Code = 143 => "UNKNOWN_ICMPV4_CODE",
        UnknownIcmpv4Type = 144 => "UNKNOWN_ICMPV4_TYPE",
        UnknownIcmpv6Code = 145 => "UNKNOWN_ICMPV6_CODE",
        UnknownIcmpv6Type = 146 => "UNKNOWN_ICMPV6_TYPE",
        ErrorRetrievingTunnelKey = 147 => "ERROR_RETRIEVING_TUNNEL_KEY",
        ErrorRetrievingTunnelOptions = 148 => "ERROR_RETRIEVING_TUNNEL_OPTIONS",
        InvalidGeneveOption = 149 => "INVALID_GENEVE_OPTION",
        UnknownL3TargetAddress = 150 => "UNKNOWN_L3_TARGET_ADDRESS",
        StaleOrUnroutableIp = 151 => "STALE_OR_UNROUTABLE_IP",
        NoMatchingLocalContainerFound = 152 => "NO_MATCHING_LOCAL_CONTAINER_FOUND",
        ErrorWhileCorrectingL3Checksum = 153 => "ERROR_WHILE_CORRECTING_L3_CHECKSUM",
        ErrorWhileCorrectingL4Checksum = 154 => "ERROR_WHILE_CORRECTING_L4_CHECKSUM",
        CtMapInsertionFailed = 155 => "CT_MAP_INSERTION_FAILED",
        InvalidIpv6ExtensionHeader = 156 => "INVALID_IPV6_EXTENSION_HEADER",
        IpFragmentationNotSupported = 157 => "IP_FRAGMENTATION_NOT_SUPPORTED",
        ServiceBackendNotFound = 158 => "SERVICE_BACKEND_NOT_FOUND",
        NoTunnelOrEncapsulationEndpoint = 160 => "NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT",
        FailedToInsertIntoProxymap = 161 => "FAILED_TO_INSERT_INTO_PROXYMAP",
        ReachedEdtRateLimitingDropHorizon = 162 => "REACHED_EDT_RATE_LIMITING_DROP_HORIZON",
        UnknownConnectionTrackingState = 163 => "UNKNOWN_CONNECTION_TRACKING_STATE",
        LocalHostIsUnreachable = 164 => "LOCAL_HOST_IS_UNREACHABLE",
        NoConfigurationAvailableToPerformPolicyDecision = 165
            => "NO_CONFIGURATION_AVAILABLE_TO_PERFORM_POLICY_DECISION",
        UnsupportedL2Protocol = 166 => "UNSUPPORTED_L2_PROTOCOL",
        NoMappingForNatMasquerade = 167 => "NO_MAPPING_FOR_NAT_MASQUERADE",
        UnsupportedProtocolForNatMasquerade = 168 => "UNSUPPORTED_PROTOCOL_FOR_NAT_MASQUERADE",
        FibLookupFailed = 169 => "FIB_LOOKUP_FAILED",
        EncapsulationTrafficIsProhibited = 170 => "ENCAPSULATION_TRAFFIC_IS_PROHIBITED",
        InvalidIdentity = 171 => "INVALID_IDENTITY",
        UnknownSender = 172 => "UNKNOWN_SENDER",
        NatNotNeeded = 173 => "NAT_NOT_NEEDED",
        IsAClusterip = 174 => "IS_A_CLUSTERIP",
        FirstLogicalDatagramFragmentNotFound = 175 => "FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND",
        ForbiddenIcmpv6Message = 176 => "FORBIDDEN_ICMPV6_MESSAGE",
        DeniedByLbSrcRangeCheck = 177 => "DENIED_BY_LB_SRC_RANGE_CHECK",
        SocketLookupFailed = 178 => "SOCKET_LOOKUP_FAILED",
        SocketAssignFailed = 179 => "SOCKET_ASSIGN_FAILED",
        ProxyRedirectionNotSupportedForProtocol = 180
            => "PROXY_REDIRECTION_NOT_SUPPORTED_FOR_PROTOCOL",
        PolicyDeny = 181 => "POLICY_DENY",
        VlanFiltered = 182 => "VLAN_FILTERED",
        InvalidVni = 183 => "INVALID_VNI",
        InvalidTcBuffer = 184 => "INVALID_TC_BUFFER",
        NoSid = 185 => "NO_SID",
        MissingSrv6State = 186 => "MISSING_SRV6_STATE",
        Nat46 = 187 => "NAT46",
        Nat64 = 188 => "NAT64",
        AuthRequired = 189 => "AUTH_REQUIRED",
        CtNoMapFound = 190 => "CT_NO_MAP_FOUND",
        SnatNoMapFound = 191 => "SNAT_NO_MAP_FOUND",
        InvalidClusterId = 192 => "INVALID_CLUSTER_ID",
        UnsupportedProtocolForDsrEncap = 193 => "UNSUPPORTED_PROTOCOL_FOR_DSR_ENCAP",
        NoEgressGateway = 194 => "NO_EGRESS_GATEWAY",
        UnencryptedTraffic = 195 => "UNENCRYPTED_TRAFFIC",
        TtlExceeded = 196 => "TTL_EXCEEDED",
        NoNodeId = 197 => "NO_NODE_ID",
        DropRateLimited = 198 => "DROP_RATE_LIMITED",
        IgmpHandled = 199 => "IGMP_HANDLED",
        IgmpSubscribed = 200 => "IGMP_SUBSCRIBED",
        MulticastHandled = 201 => "MULTICAST_HANDLED",
        DropHostNotReady = 202 => "DROP_HOST_NOT_READY",
        DropEpNotReady = 203 => "DROP_EP_NOT_READY",
        DropNoEgressIp = 204 => "DROP_NO_EGRESS_IP",
        DropPuntProxy = 205 => "DROP_PUNT_PROXY",
    }
}

#[cfg(test)]
mod tests {
    use super::{DropReason, TrafficDirection, Verdict};

    fn read<T: serde::de::DeserializeOwned>(json: &str) -> T {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn names_and_numbers_read_as_their_variant_and_write_by_name() {
        assert_eq!(read::<Verdict>(r#""DROPPED""#), Verdict::Dropped);
        assert_eq!(read::<Verdict>("2"), Verdict::Dropped);
        assert_eq!(read::<DropReason>("181"), DropReason::PolicyDeny);
        assert_eq!(
            serde_json::to_string(&DropReason::from_number(133)).unwrap(),
            r#""POLICY_DENIED""#
        );
        assert_eq!(
            read::<TrafficDirection>("null"),
            TrafficDirection::default()
        );
    }

    #[test]
    fn unknown_names_and_numbers_are_kept_as_read() {
        let name: Verdict = read(r#""QUARANTINED""#);
        assert_eq!(name, Verdict::Other("QUARANTINED".into()));
        assert_eq!(serde_json::to_string(&name).unwrap(), r#""QUARANTINED""#);
        assert_eq!(name.number(), None);
        let number: Verdict = read("42");
        assert_eq!(number, Verdict::OtherNumber(42));
        assert_eq!(serde_json::to_string(&number).unwrap(), "42");
        assert_eq!(number.name(), None);
        assert_eq!(number.to_string(), "42");
    }

    #[test]
    fn a_number_beyond_i32_or_a_value_of_another_type_is_an_error() {
        for bad in ["2147483648", "-2147483649", "1.5", "true", "[]", "{}"] {
            let err = serde_json::from_str::<Verdict>(bad)
                .unwrap_err()
                .to_string();
            assert!(err.contains("Verdict (a name or a number)"), "{bad}: {err}");
        }
    }

    #[test]
    fn every_named_value_has_one_name_and_one_number() {
        for v in DropReason::NAMED {
            let name = v.name().unwrap();
            let number = v.number().unwrap();
            assert_eq!(&DropReason::from_name(name), v);
            assert_eq!(&DropReason::from_number(number), v);
            assert_eq!(v.to_string(), name);
        }
        assert!(DropReason::NAMED[0].is_unset());
        assert_eq!(DropReason::NAMED.len(), 76);
    }
}
