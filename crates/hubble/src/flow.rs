//! [`Flow`]: one event of Hubble's flow API (`flow.Flow`), with its small companions
//! ([`CiliumEventType`], [`NetworkInterface`], [`TraceContext`], ...).

use crate::endpoint::{Endpoint, Policy, Service};
use crate::enums::{
    AuthType, DebugCapturePoint, DropReason, FlowType, SocketTranslationPoint,
    TraceObservationPoint, TraceReason, TrafficDirection, Verdict,
};
use crate::l7::Layer7;
use crate::layers::{Ethernet, Ip, Layer4, Tunnel};
use crate::time::Time;
use crate::wire::message;

message! {
    /// One flow as `hubble observe -o jsonpb` prints it (`flow.Flow`), field for field, in the
    /// proto's order; the JSON keys are the proto field names (`drop_reason_desc`, `IP`, `Type`).
    ///
    /// Numbers and lists are `Option`s: `None` is absent from the JSON, `Some` is written even
    /// when zero or empty (jsonpb omits zeros; the simulator writes some, and both shapes read back
    /// as they were). Strings, enums and plain `bool`s are omitted at their zero value, as jsonpb
    /// omits them. Fields this crate does not know are ignored on input.
    pub struct Flow {
        /// When the event happened.
        pub time: Option<Time>,
        /// A unique identifier of the flow.
        pub uuid: String,
        /// Who emitted the flow.
        pub emitter: Option<Emitter>,
        /// What happened to it.
        pub verdict: Verdict,
        /// The drop reason's number (deprecated by Hubble for `drop_reason_desc`).
        pub drop_reason: Option<u32>,
        /// The authentication the policy required.
        pub auth_type: AuthType,
        /// The layer-2 header.
        pub ethernet: Option<Ethernet>,
        /// The IP header (`IP`).
        #[serde(rename = "IP")]
        pub ip: Option<Ip>,
        /// The transport header.
        pub l4: Option<Layer4>,
        /// The outer headers of a tunnelled packet.
        pub tunnel: Option<Tunnel>,
        /// The source.
        pub source: Option<Endpoint>,
        /// The destination.
        pub destination: Option<Endpoint>,
        /// The kind of flow (`Type`): `L3_L4`, `L7`, ...
        #[serde(rename = "Type")]
        pub flow_type: FlowType,
        /// The node that observed it.
        pub node_name: String,
        /// That node's labels, `key=value`.
        pub node_labels: Option<Vec<String>>,
        /// The DNS names the source address is known by.
        pub source_names: Option<Vec<String>>,
        /// The DNS names the destination address is known by (without the trailing dot).
        pub destination_names: Option<Vec<String>>,
        /// The L7 record, on flows of type `L7`.
        pub l7: Option<Layer7>,
        /// Whether it is a reply (deprecated by Hubble for `is_reply`, which can say "unknown").
        pub reply: bool,
        /// The Cilium event the flow came from.
        pub event_type: Option<CiliumEventType>,
        /// The service of the source.
        pub source_service: Option<Service>,
        /// The service of the destination.
        pub destination_service: Option<Service>,
        /// The direction of the connection, as seen by the endpoint that judged it.
        pub traffic_direction: TrafficDirection,
        /// How a policy verdict matched (0 none, 1 L3-only, 2 L3-L4, 3 L4-only, 4 all, 5
        /// L3-proto, 6 proto-only).
        pub policy_match_type: Option<u32>,
        /// Where a trace event was taken.
        pub trace_observation_point: TraceObservationPoint,
        /// Connection tracking's view of a traced packet.
        pub trace_reason: TraceReason,
        /// The datapath source file and line of a drop.
        pub file: Option<FileInfo>,
        /// The trace ID in the packet's IP options.
        pub ip_trace_id: Option<IpTraceId>,
        /// Why it was dropped, on dropped flows.
        pub drop_reason_desc: DropReason,
        /// Whether it is a reply; `None` when unknown (a `google.protobuf.BoolValue`, printed as a
        /// plain `bool`).
        pub is_reply: Option<bool>,
        /// Where a debug capture was taken.
        pub debug_capture_point: DebugCapturePoint,
        /// The network interface it was seen on.
        pub interface: Option<NetworkInterface>,
        /// The port of the proxy it was redirected to.
        pub proxy_port: Option<u32>,
        /// The distributed trace it belongs to.
        pub trace_context: Option<TraceContext>,
        /// The socket translation point of a `TraceSock` event.
        pub sock_xlate_point: SocketTranslationPoint,
        /// The kernel's socket cookie (a 64-bit integer: a string in JSON).
        pub socket_cookie: Option<u64>,
        /// The cgroup of the process that sent it (a 64-bit integer: a string in JSON).
        pub cgroup_id: Option<u64>,
        /// A one-line summary (`Summary`, deprecated by Hubble).
        #[serde(rename = "Summary")]
        pub summary: String,
        /// Extensions (a `google.protobuf.Any`), kept as read.
        pub extensions: Option<serde_json::Value>,
        /// The policies that allowed its egress.
        pub egress_allowed_by: Option<Vec<Policy>>,
        /// The policies that allowed its ingress.
        pub ingress_allowed_by: Option<Vec<Policy>>,
        /// The policies that denied its egress.
        pub egress_denied_by: Option<Vec<Policy>>,
        /// The policies that denied its ingress.
        pub ingress_denied_by: Option<Vec<Policy>>,
        /// The log values of the policies that matched it.
        pub policy_log: Option<Vec<String>>,
        /// Counters of an aggregated flow.
        pub aggregate: Option<Aggregate>,
    }

    /// The Cilium monitor event a flow came from (`flow.CiliumEventType`).
    #[derive(Copy, Hash)]
    pub struct CiliumEventType {
        /// The message type ([`CiliumEventType::DROP`], [`CiliumEventType::POLICY_VERDICT`], ...).
        #[serde(rename = "type")]
        pub event_type: Option<i32>,
        /// The sub-type: the drop reason of a drop, the observation point of a trace, ...
        pub sub_type: Option<i32>,
    }
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

message! {
    /// Who emitted a flow (`flow.Emitter`).
    pub struct Emitter {
        /// Its name (`Hubble`).
        pub name: String,
        /// Its version (`1.19.0`).
        pub version: String,
    }

    /// A datapath source location (`flow.FileInfo`).
    pub struct FileInfo {
        /// The file.
        pub name: String,
        /// The line.
        pub line: Option<u32>,
    }

    /// The trace ID carried in a packet's IP options (`flow.IPTraceID`).
    #[derive(Copy, Hash)]
    pub struct IpTraceId {
        /// The trace ID (a 64-bit integer: a string in JSON).
        pub trace_id: Option<u64>,
        /// The IP option's type.
        pub ip_option_type: Option<u32>,
    }

    /// A network interface (`flow.NetworkInterface`).
    pub struct NetworkInterface {
        /// Its index.
        pub index: Option<u32>,
        /// Its name.
        pub name: String,
    }

    /// The distributed trace a flow belongs to (`flow.TraceContext`).
    pub struct TraceContext {
        /// The request that started it.
        pub parent: Option<TraceParent>,
    }

    /// The request at the root of a trace (`flow.TraceParent`).
    pub struct TraceParent {
        /// The trace ID, in hexadecimal.
        pub trace_id: String,
    }

    /// The counters of an aggregated flow (`flow.Aggregate`).
    #[derive(Copy, Hash)]
    pub struct Aggregate {
        /// Flows in the ingress direction.
        pub ingress_flow_count: Option<u32>,
        /// Flows in the egress direction.
        pub egress_flow_count: Option<u32>,
        /// Flows of unknown direction.
        pub unknown_direction_flow_count: Option<u32>,
    }
}
