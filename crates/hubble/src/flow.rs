//! [`Flow`]: one event of Hubble's flow API (`flow.Flow`), with its small companions
//! ([`CiliumEventType`], [`NetworkInterface`], [`TraceContext`], ...).

use serde::{Deserialize, Serialize};

use crate::endpoint::{Endpoint, Policy, Service};
use crate::enums::{
    AuthType, DebugCapturePoint, DropReason, FlowType, SocketTranslationPoint,
    TraceObservationPoint, TraceReason, TrafficDirection, Verdict,
};
use crate::l7::Layer7;
use crate::layers::{Ethernet, Ip, Layer4, Tunnel};
use crate::time::Time;
use crate::wire;

/// One flow as `hubble observe -o jsonpb` prints it (`flow.Flow`), field for field, in the
/// proto's order; the JSON keys are the proto field names (`drop_reason_desc`, `IP`, `Type`).
///
/// Numbers and lists are `Option`s: `None` is absent from the JSON, `Some` is written even
/// when zero or empty (jsonpb omits zeros; the simulator writes some, and both shapes read back
/// as they were). Strings, enums and plain `bool`s are omitted at their zero value, as jsonpb
/// omits them. Fields this crate does not know are ignored on input.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Flow {
    /// When the event happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
    /// A unique identifier of the flow.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub uuid: String,
    /// Who emitted the flow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emitter: Option<Emitter>,
    /// What happened to it.
    #[serde(skip_serializing_if = "Verdict::is_unset")]
    pub verdict: Verdict,
    /// The drop reason's number (deprecated by Hubble for `drop_reason_desc`).
    #[serde(
        alias = "dropReason",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub drop_reason: Option<u32>,
    /// The authentication the policy required.
    #[serde(alias = "authType", skip_serializing_if = "AuthType::is_unset")]
    pub auth_type: AuthType,
    /// The layer-2 header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ethernet: Option<Ethernet>,
    /// The IP header (`IP`).
    #[serde(rename = "IP", skip_serializing_if = "Option::is_none")]
    pub ip: Option<Ip>,
    /// The transport header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub l4: Option<Layer4>,
    /// The outer headers of a tunnelled packet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<Tunnel>,
    /// The source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Endpoint>,
    /// The destination.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<Endpoint>,
    /// The kind of flow (`Type`): `L3_L4`, `L7`, ...
    #[serde(rename = "Type", skip_serializing_if = "FlowType::is_unset")]
    pub flow_type: FlowType,
    /// The node that observed it.
    #[serde(
        alias = "nodeName",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub node_name: String,
    /// That node's labels, `key=value`.
    #[serde(alias = "nodeLabels", skip_serializing_if = "Option::is_none")]
    pub node_labels: Option<Vec<String>>,
    /// The DNS names the source address is known by.
    #[serde(alias = "sourceNames", skip_serializing_if = "Option::is_none")]
    pub source_names: Option<Vec<String>>,
    /// The DNS names the destination address is known by (without the trailing dot).
    #[serde(alias = "destinationNames", skip_serializing_if = "Option::is_none")]
    pub destination_names: Option<Vec<String>>,
    /// The L7 record, on flows of type `L7`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub l7: Option<Layer7>,
    /// Whether it is a reply (deprecated by Hubble for `is_reply`, which can say "unknown").
    #[serde(
        skip_serializing_if = "wire::is_false",
        deserialize_with = "wire::or_default"
    )]
    pub reply: bool,
    /// The Cilium event the flow came from.
    #[serde(alias = "eventType", skip_serializing_if = "Option::is_none")]
    pub event_type: Option<CiliumEventType>,
    /// The service of the source.
    #[serde(alias = "sourceService", skip_serializing_if = "Option::is_none")]
    pub source_service: Option<Service>,
    /// The service of the destination.
    #[serde(alias = "destinationService", skip_serializing_if = "Option::is_none")]
    pub destination_service: Option<Service>,
    /// The direction of the connection, as seen by the endpoint that judged it.
    #[serde(
        alias = "trafficDirection",
        skip_serializing_if = "TrafficDirection::is_unset"
    )]
    pub traffic_direction: TrafficDirection,
    /// How a policy verdict matched (0 none, 1 L3-only, 2 L3-L4, 3 L4-only, 4 all, 5
    /// L3-proto, 6 proto-only).
    #[serde(
        alias = "policyMatchType",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub policy_match_type: Option<u32>,
    /// Where a trace event was taken.
    #[serde(
        alias = "traceObservationPoint",
        skip_serializing_if = "TraceObservationPoint::is_unset"
    )]
    pub trace_observation_point: TraceObservationPoint,
    /// Connection tracking's view of a traced packet.
    #[serde(alias = "traceReason", skip_serializing_if = "TraceReason::is_unset")]
    pub trace_reason: TraceReason,
    /// The datapath source file and line of a drop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<FileInfo>,
    /// The trace ID in the packet's IP options.
    #[serde(alias = "ipTraceId", skip_serializing_if = "Option::is_none")]
    pub ip_trace_id: Option<IpTraceId>,
    /// Why it was dropped, on dropped flows.
    #[serde(alias = "dropReasonDesc", skip_serializing_if = "DropReason::is_unset")]
    pub drop_reason_desc: DropReason,
    /// Whether it is a reply; `None` when unknown (a `google.protobuf.BoolValue`, printed as a
    /// plain `bool`).
    #[serde(alias = "isReply", skip_serializing_if = "Option::is_none")]
    pub is_reply: Option<bool>,
    /// Where a debug capture was taken.
    #[serde(
        alias = "debugCapturePoint",
        skip_serializing_if = "DebugCapturePoint::is_unset"
    )]
    pub debug_capture_point: DebugCapturePoint,
    /// The network interface it was seen on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<NetworkInterface>,
    /// The port of the proxy it was redirected to.
    #[serde(
        alias = "proxyPort",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub proxy_port: Option<u32>,
    /// The distributed trace it belongs to.
    #[serde(alias = "traceContext", skip_serializing_if = "Option::is_none")]
    pub trace_context: Option<TraceContext>,
    /// The socket translation point of a `TraceSock` event.
    #[serde(
        alias = "sockXlatePoint",
        skip_serializing_if = "SocketTranslationPoint::is_unset"
    )]
    pub sock_xlate_point: SocketTranslationPoint,
    /// The kernel's socket cookie (a 64-bit integer: a string in JSON).
    #[serde(
        alias = "socketCookie",
        skip_serializing_if = "Option::is_none",
        serialize_with = "wire::opt_u64_str",
        deserialize_with = "wire::opt_int"
    )]
    pub socket_cookie: Option<u64>,
    /// The cgroup of the process that sent it (a 64-bit integer: a string in JSON).
    #[serde(
        alias = "cgroupId",
        skip_serializing_if = "Option::is_none",
        serialize_with = "wire::opt_u64_str",
        deserialize_with = "wire::opt_int"
    )]
    pub cgroup_id: Option<u64>,
    /// A one-line summary (`Summary`, deprecated by Hubble).
    #[serde(
        rename = "Summary",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub summary: String,
    /// Extensions (a `google.protobuf.Any`), kept as read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extensions: Option<serde_json::Value>,
    /// The policies that allowed its egress.
    #[serde(alias = "egressAllowedBy", skip_serializing_if = "Option::is_none")]
    pub egress_allowed_by: Option<Vec<Policy>>,
    /// The policies that allowed its ingress.
    #[serde(alias = "ingressAllowedBy", skip_serializing_if = "Option::is_none")]
    pub ingress_allowed_by: Option<Vec<Policy>>,
    /// The policies that denied its egress.
    #[serde(alias = "egressDeniedBy", skip_serializing_if = "Option::is_none")]
    pub egress_denied_by: Option<Vec<Policy>>,
    /// The policies that denied its ingress.
    #[serde(alias = "ingressDeniedBy", skip_serializing_if = "Option::is_none")]
    pub ingress_denied_by: Option<Vec<Policy>>,
    /// The log values of the policies that matched it.
    #[serde(alias = "policyLog", skip_serializing_if = "Option::is_none")]
    pub policy_log: Option<Vec<String>>,
    /// Counters of an aggregated flow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregate: Option<Aggregate>,
}

/// The Cilium monitor event a flow came from (`flow.CiliumEventType`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct CiliumEventType {
    /// The message type ([`CiliumEventType::DROP`], [`CiliumEventType::POLICY_VERDICT`], ...).
    #[serde(
        rename = "type",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub event_type: Option<i32>,
    /// The sub-type: the drop reason of a drop, the observation point of a trace, ...
    #[serde(
        alias = "subType",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub sub_type: Option<i32>,
}

impl CiliumEventType {
    /// A datapath drop notification.
    pub const DROP: i32 = 1;
    /// A datapath debug message.
    pub const DEBUG: i32 = 2;
    /// A datapath debug capture.
    pub const CAPTURE: i32 = 3;
    /// A datapath trace notification.
    pub const TRACE: i32 = 4;
    /// A datapath policy verdict notification.
    pub const POLICY_VERDICT: i32 = 5;
    /// A socket-level trace notification.
    pub const TRACE_SOCK: i32 = 7;
    /// A proxy access log record (L7 flows).
    pub const ACCESS_LOG: i32 = 129;
    /// An agent notification.
    pub const AGENT: i32 = 130;

    /// The event of this message type, with no sub-type.
    pub fn of(event_type: i32) -> Self {
        Self {
            event_type: Some(event_type),
            sub_type: None,
        }
    }
}

/// Who emitted a flow (`flow.Emitter`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Emitter {
    /// Its name (`Hubble`).
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub name: String,
    /// Its version (`1.19.0`).
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub version: String,
}

/// A datapath source location (`flow.FileInfo`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FileInfo {
    /// The file.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub name: String,
    /// The line.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub line: Option<u32>,
}

/// The trace ID carried in a packet's IP options (`flow.IPTraceID`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct IpTraceId {
    /// The trace ID (a 64-bit integer: a string in JSON).
    #[serde(
        alias = "traceId",
        skip_serializing_if = "Option::is_none",
        serialize_with = "wire::opt_u64_str",
        deserialize_with = "wire::opt_int"
    )]
    pub trace_id: Option<u64>,
    /// The IP option's type.
    #[serde(
        alias = "ipOptionType",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub ip_option_type: Option<u32>,
}

/// A network interface (`flow.NetworkInterface`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkInterface {
    /// Its index.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub index: Option<u32>,
    /// Its name.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub name: String,
}

/// The distributed trace a flow belongs to (`flow.TraceContext`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TraceContext {
    /// The request that started it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<TraceParent>,
}

/// The request at the root of a trace (`flow.TraceParent`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TraceParent {
    /// The trace ID, in hexadecimal.
    #[serde(
        alias = "traceId",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub trace_id: String,
}

/// The counters of an aggregated flow (`flow.Aggregate`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct Aggregate {
    /// Flows in the ingress direction.
    #[serde(
        alias = "ingressFlowCount",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub ingress_flow_count: Option<u32>,
    /// Flows in the egress direction.
    #[serde(
        alias = "egressFlowCount",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub egress_flow_count: Option<u32>,
    /// Flows of unknown direction.
    #[serde(
        alias = "unknownDirectionFlowCount",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub unknown_direction_flow_count: Option<u32>,
}
