//! [`GetFlowsResponse`]: one line of `hubble observe -o jsonpb`, a [`Flow`] or a protocol
//! message ([`NodeStatusEvent`], [`LostEvent`]), with the node and the time.

use serde::{Deserialize, Serialize};

use crate::enums::{LostEventSource, NodeState};
use crate::flow::Flow;
use crate::time::Time;
use crate::wire;

/// One event of Hubble's `GetFlows` stream (`observer.GetFlowsResponse`), as
/// `hubble observe -o jsonpb` prints it: `{"flow": {...}, "node_name": "...", "time": "..."}`.
///
/// The three payloads are a proto `oneof`: one of `flow`, `node_status` and `lost_events` is
/// set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GetFlowsResponse {
    /// A flow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<Flow>,
    /// A change in the state of the nodes Hubble Relay streams from.
    #[serde(alias = "nodeStatus", skip_serializing_if = "Option::is_none")]
    pub node_status: Option<NodeStatusEvent>,
    /// Events lost before Hubble could capture them.
    #[serde(alias = "lostEvents", skip_serializing_if = "Option::is_none")]
    pub lost_events: Option<LostEvent>,
    /// The node that observed the event.
    #[serde(
        alias = "nodeName",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub node_name: String,
    /// When.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
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

/// A change in the state of some nodes, from Hubble Relay (`relay.NodeStatusEvent`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeStatusEvent {
    /// The new state.
    #[serde(alias = "stateChange", skip_serializing_if = "NodeState::is_unset")]
    pub state_change: NodeState,
    /// The nodes it applies to.
    #[serde(alias = "nodeNames", skip_serializing_if = "Option::is_none")]
    pub node_names: Option<Vec<String>>,
    /// A message (an error's text).
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub message: String,
}

/// Events lost before Hubble could capture them (`flow.LostEvent`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LostEvent {
    /// Where they were lost.
    #[serde(skip_serializing_if = "LostEventSource::is_unset")]
    pub source: LostEventSource,
    /// How many (a 64-bit integer: a string in JSON).
    #[serde(
        alias = "numEventsLost",
        skip_serializing_if = "Option::is_none",
        serialize_with = "wire::opt_u64_str",
        deserialize_with = "wire::opt_int"
    )]
    pub num_events_lost: Option<u64>,
    /// The CPU whose perf ring buffer lost them (a `google.protobuf.Int32Value`).
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub cpu: Option<i32>,
    /// When the first one was lost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first: Option<Time>,
    /// When the last one was lost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<Time>,
}
