//! [`GetFlowsResponse`]: one line of `hubble observe -o jsonpb`, a [`Flow`] or a protocol
//! message ([`NodeStatusEvent`], [`LostEvent`]), with the node and the time.

use crate::enums::{LostEventSource, NodeState};
use crate::flow::Flow;
use crate::time::Time;
use crate::wire::message;

message! {
    /// One event of Hubble's `GetFlows` stream (`observer.GetFlowsResponse`), as
    /// `hubble observe -o jsonpb` prints it: `{"flow": {...}, "node_name": "...", "time": "..."}`.
    ///
    /// The three payloads are a proto `oneof`: one of `flow`, `node_status` and `lost_events` is
    /// set.
    pub struct GetFlowsResponse {
        /// A flow.
        pub flow: Option<Flow>,
        /// A change in the state of the nodes Hubble Relay streams from.
        pub node_status: Option<NodeStatusEvent>,
        /// Events lost before Hubble could capture them.
        pub lost_events: Option<LostEvent>,
        /// The node that observed the event.
        pub node_name: String,
        /// When.
        pub time: Option<Time>,
    }
}

/// A line that is not a Hubble event.
#[derive(Debug, thiserror::Error)]
#[error("not a Hubble event: {source}")]
pub struct ParseError {
    /// What the JSON reader found, with its line and column.
    #[from]
    pub source: serde_json::Error,
}

impl GetFlowsResponse {
    /// The event of `flow`, with the flow's node and time, as Hubble wraps a flow.
    pub fn from_flow(flow: Flow) -> Self {
        Self {
            node_name: flow.node_name.clone(),
            time: flow.time.clone(),
            flow: Some(flow),
            ..Self::default()
        }
    }

    /// Reads one line of JSON: an event as `hubble observe -o jsonpb` prints it, or a bare flow
    /// as `hubble observe -o json` and Hubble's flow exporter may write it (wrapped with
    /// [`Self::from_flow`]). Fields this crate does not know are ignored.
    pub fn from_json_line(line: &str) -> Result<Self, ParseError> {
        let response: Self = serde_json::from_str(line)?;
        if response.flow.is_some()
            || response.node_status.is_some()
            || response.lost_events.is_some()
        {
            return Ok(response);
        }
        let flow: Flow = serde_json::from_str(line)?;
        if flow == Flow::default() {
            return Ok(response);
        }
        Ok(Self::from_flow(flow))
    }
}

message! {
    /// A change in the state of some nodes, from Hubble Relay (`relay.NodeStatusEvent`).
    pub struct NodeStatusEvent {
        /// The new state.
        pub state_change: NodeState,
        /// The nodes it applies to.
        pub node_names: Option<Vec<String>>,
        /// A message (an error's text).
        pub message: String,
    }

    /// Events lost before Hubble could capture them (`flow.LostEvent`).
    pub struct LostEvent {
        /// Where they were lost.
        pub source: LostEventSource,
        /// How many (a 64-bit integer: a string in JSON).
        pub num_events_lost: Option<u64>,
        /// The CPU whose perf ring buffer lost them (a `google.protobuf.Int32Value`).
        pub cpu: Option<i32>,
        /// When the first one was lost.
        pub first: Option<Time>,
        /// When the last one was lost.
        pub last: Option<Time>,
    }
}
