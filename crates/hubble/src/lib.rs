//! Hubble's flow model, once: the events of Hubble's flow API as `hubble observe -o jsonpb`
//! prints them, read and written with serde, and their compact text form: what the simulator
//! writes its flows with, what the replay reads recorded ones with, and how both print them.
//!
//! - [`response`]: [`GetFlowsResponse`], one line of `hubble observe -o jsonpb`
//!   (`{"flow": {...}, "node_name": ..., "time": ...}`), or a [`NodeStatusEvent`] or a
//!   [`LostEvent`]; [`GetFlowsResponse::from_json_line`] also takes a bare flow.
//! - [`flow`]: [`Flow`] and its small companions ([`CiliumEventType`], ...).
//! - [`endpoint`]: the ends of a flow ([`Endpoint`], [`Service`]) and the [`Policy`] objects
//!   that allowed or denied it.
//! - [`layers`]: the packet headers ([`Ethernet`], [`Ip`], [`Layer4`] with [`Tcp`] and its
//!   [`TcpFlags`], [`Udp`], ...).
//! - [`l7`]: what a proxy saw ([`Layer7`] with [`Dns`], [`Http`], [`Kafka`]).
//! - [`enums`]: Hubble's enums ([`Verdict`], [`DropReason`], [`TrafficDirection`],
//!   [`FlowType`], ...), which keep values this crate does not know.
//! - [`time`]: [`Time`], an RFC 3339 time that writes back the text it was read from.
//! - [`compact`](mod@compact): the one-line text form of a flow, as `fqdnpath run` prints it.
//! - `wire` (private): jsonpb's rules on keys and values, once, and the `message!` macro that
//!   declares every message above with them.
//!
//! # The JSON
//!
//! The types follow protojson with proto field names, which is what `hubble observe -o jsonpb`
//! (and `-o json`) prints: keys are the proto field names (`drop_reason_desc`, `IP`, `Type`,
//! `ID`, `ipVersion`); enums are written by name; 64-bit integers (`latency_ns`,
//! `socket_cookie`, ...) are written as strings and read from strings or numbers, 32-bit ones
//! (`ID`, `identity`, ports) are numbers; `is_reply` is a plain `bool` or absent; `time` is RFC
//! 3339. Reading ignores unknown fields, takes absent ones as unset, accepts `null` for any
//! field and the lowerCamelCase key names protojson also reads (`dropReasonDesc`), and keeps
//! enum values it does not know (Hubble adds values in every release).
//!
//! Writing omits what is unset, as jsonpb does. Numbers and lists are `Option`s so that a value
//! written at zero (`"policy_match_type": 0`, `"labels": []`, as the simulator writes them) is
//! kept apart from one left out: every line reads back to the same JSON value. Fields are
//! written in the proto's order; `serde_json::to_value` sorts them by name, as the simulator
//! prints them.
//!
//! # Building a flow
//!
//! Every type is a plain struct with public fields and [`Default`]: a producer writes a struct
//! literal with the fields it knows and `..Default::default()`. A few constructors cover the
//! common parts: [`Ip::new`], [`Layer4::tcp`], [`Layer4::udp`], [`CiliumEventType::of`],
//! [`Time::from_timestamp`] and [`GetFlowsResponse::from_flow`].
//!
//! ```
//! use fqdnpath_hubble::{
//!     CiliumEventType, Endpoint, Flow, FlowType, GetFlowsResponse, Ip, Layer4, Time,
//!     TrafficDirection, Verdict, compact,
//! };
//!
//! let time = Time::parse("2026-11-29T16:00:00.000000000Z").unwrap();
//! let flow = Flow {
//!     time: Some(time),
//!     verdict: Verdict::Forwarded,
//!     flow_type: FlowType::L3L4,
//!     node_name: "node-1".into(),
//!     event_type: Some(CiliumEventType::of(CiliumEventType::POLICY_VERDICT)),
//!     traffic_direction: TrafficDirection::Egress,
//!     is_reply: Some(false),
//!     ip: Some(Ip::new([10, 0, 1, 10].into(), [192, 0, 2, 80].into())),
//!     l4: Some(Layer4::tcp(40001, 443)),
//!     source: Some(Endpoint {
//!         id: Some(1),
//!         identity: Some(256),
//!         namespace: "default".into(),
//!         pod_name: "app".into(),
//!         labels: Some(vec!["k8s:app=web".into()]),
//!         ..Endpoint::default()
//!     }),
//!     destination: Some(Endpoint {
//!         identity: Some(16_777_217),
//!         labels: Some(vec!["reserved:world".into()]),
//!         ..Endpoint::default()
//!     }),
//!     destination_names: Some(vec!["www.example.com".into()]),
//!     policy_match_type: Some(2),
//!     ..Flow::default()
//! };
//! assert_eq!(
//!     compact(&flow).to_string(),
//!     "Nov 29 16:00:00.000 default/app:40001 (ID:256) -> 192.0.2.80:443 (ID:16777217) \
//!      policy-verdict:L3-L4 EGRESS ALLOWED (TCP) FORWARDED"
//! );
//! let line = serde_json::to_string(&GetFlowsResponse::from_flow(flow)).unwrap();
//! assert!(line.starts_with(r#"{"flow":{"time":"2026-11-29T16:00:00.000000000Z","verdict""#));
//! assert_eq!(
//!     GetFlowsResponse::from_json_line(&line).unwrap().flow.unwrap().node_name,
//!     "node-1"
//! );
//! ```
//!
//! Nothing here reads a clock or does I/O.
#![forbid(unsafe_code)]

pub mod compact;
pub mod endpoint;
pub mod enums;
pub mod flow;
pub mod l7;
pub mod layers;
pub mod response;
pub mod time;
mod wire;

pub use compact::{Compact, compact};
pub use endpoint::{Endpoint, Policy, Service, Workload};
pub use enums::{
    AuthType, DebugCapturePoint, DropReason, FlowType, IpVersion, L7FlowType, LostEventSource,
    NodeState, SocketTranslationPoint, TraceObservationPoint, TraceReason, TrafficDirection,
    TunnelProtocol, Verdict,
};
pub use flow::{
    Aggregate, CiliumEventType, Emitter, FileInfo, Flow, IpTraceId, NetworkInterface, TraceContext,
    TraceParent,
};
pub use l7::{Dns, Http, HttpHeader, Kafka, Layer7};
pub use layers::{Ethernet, Icmp, Igmp, Ip, Layer4, Sctp, Tcp, TcpFlags, Tunnel, Udp, Vrrp};
pub use response::{GetFlowsResponse, LostEvent, NodeStatusEvent, ParseError};
pub use time::{Time, TimeError};
