//! Hubble's view of a run: each flow and each DNS answer as Hubble's flow
//! ([`GetFlowsResponse`], from `fqdnpath-hubble`), printed with that crate's compact printer
//! (`hubble observe`'s style) and serialised as `hubble observe -o json` prints it.
//!
//! Self-contained: it knows how the simulator's events map onto Hubble's flow and nothing of
//! the simulation's state, which hands it plain values (the event, both ends, the names).

use fqdnpath_cache::{EndpointId, Observation, Timestamp};
use fqdnpath_datapath::{FlowEvent, PROTO_UDP, Verdict};
use fqdnpath_hubble::{
    CiliumEventType, Dns, DropReason, Endpoint, Flow, FlowType, GetFlowsResponse, Ip, L7FlowType,
    Layer4, Layer7, TrafficDirection, compact,
};

use super::clock;

/// One line of output: a flow or a DNS answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// When.
    pub time: Timestamp,
    /// The event as Hubble's flow API gives it: `{"flow": {...}, "node_name": ..., "time":
    /// ...}`.
    pub flow: GetFlowsResponse,
    /// The text, in the style of `hubble observe`: the flow's
    /// [`compact`](fqdnpath_hubble::compact()) form.
    pub text: String,
    /// [`Line::flow`] as `hubble observe -o json` prints it (through `serde_json::Value`:
    /// keys sorted by name); `null` unless the simulation was made
    /// [`Simulation::with_json`](super::Simulation::with_json).
    pub json: serde_json::Value,
}

impl Line {
    /// The line of `flow`, with its JSON when `json` is set.
    pub(super) fn new(time: Timestamp, flow: Flow, json: bool) -> Self {
        let text = compact(&flow).to_string();
        let flow = GetFlowsResponse::from_flow(flow);
        let json = if json {
            // Plain structs with string keys: serialising them cannot fail.
            serde_json::to_value(&flow).expect("a flow serialises to JSON")
        } else {
            serde_json::Value::Null
        };
        Self {
            time,
            flow,
            text,
            json,
        }
    }
}

/// One end of a flow: the pod at the address if there is one (endpoint ID, namespace and
/// name), its numeric identity and the identity's labels.
pub(super) fn endpoint(
    pod: Option<(EndpointId, &str, &str)>,
    identity: u32,
    labels: Vec<String>,
) -> Endpoint {
    let (id, namespace, pod_name) = pod.unwrap_or_default();
    Endpoint {
        id: pod.map(|_| u32::from(id.0)),
        identity: Some(identity),
        namespace: namespace.to_owned(),
        pod_name: pod_name.to_owned(),
        labels: Some(labels),
        ..Endpoint::default()
    }
}

/// A flow seen on `node`, from `source` to `destination`; `names` are the DNS names the node's
/// agent knows for the destination (without the trailing dot).
pub(super) fn flow(
    event: &FlowEvent,
    node: &str,
    source: Endpoint,
    destination: Endpoint,
    names: Vec<String>,
) -> Flow {
    let p = &event.packet;
    // Hubble's verdict of the same name; a drop is a drop event, anything else a policy
    // verdict.
    let verdict = fqdnpath_hubble::Verdict::from_name(event.verdict.name());
    let event_type = if event.verdict == Verdict::Dropped {
        CiliumEventType::DROP
    } else {
        CiliumEventType::POLICY_VERDICT
    };
    // The simulator's flows are TCP or UDP.
    let l4 = if p.proto == PROTO_UDP {
        Layer4::udp(p.sport, p.dport)
    } else {
        Layer4::tcp(p.sport, p.dport)
    };
    Flow {
        time: Some(clock::time(event.time)),
        verdict,
        drop_reason: event.drop_reason.map(|r| u32::from(r.code())),
        ip: Some(Ip::new(p.src, p.dst)),
        l4: Some(l4),
        source: Some(source),
        destination: Some(destination),
        flow_type: FlowType::L3L4,
        node_name: node.to_owned(),
        destination_names: Some(names),
        event_type: Some(CiliumEventType::of(event_type)),
        traffic_direction: TrafficDirection::Egress,
        policy_match_type: Some(event.match_type.map_or(0, |m| u32::from(m.code()))),
        drop_reason_desc: event
            .drop_reason
            .map_or(DropReason::DropReasonUnknown, |r| {
                DropReason::from_name(r.desc())
            }),
        is_reply: Some(event.is_reply),
        ..Flow::default()
    }
}

/// The DNS answer `answer` to the question for `qname`, as the pod `pod` on `node` got it at
/// `time`: an L7 flow, as the proxy's access log gives Hubble one.
pub(super) fn dns_response(
    time: Timestamp,
    node: &str,
    pod: Endpoint,
    qname: &str,
    answer: &Observation,
) -> Flow {
    Flow {
        time: Some(clock::time(time)),
        verdict: fqdnpath_hubble::Verdict::Forwarded,
        destination: Some(pod),
        flow_type: FlowType::L7,
        node_name: node.to_owned(),
        l7: Some(Layer7 {
            l7_type: L7FlowType::Response,
            dns: Some(Dns::response(
                qname,
                &answer.addresses,
                answer.ttl,
                &answer.cnames,
                u16::from(answer.rcode),
                answer.qtype.to_string(),
            )),
            ..Layer7::default()
        }),
        event_type: Some(CiliumEventType::of(CiliumEventType::ACCESS_LOG)),
        traffic_direction: TrafficDirection::Egress,
        is_reply: Some(true),
        ..Flow::default()
    }
}

#[cfg(test)]
mod tests {
    use fqdnpath_policy::policymap::DropReason as PolicyDropReason;

    use super::*;

    #[test]
    fn every_drop_reason_is_written_as_its_hubble_name() {
        for reason in PolicyDropReason::ALL {
            let written = DropReason::from_name(reason.desc());
            assert_eq!(
                written,
                DropReason::from_number(i32::from(reason.code())),
                "{reason:?}"
            );
            assert_eq!(
                serde_json::to_value(&written).unwrap(),
                serde_json::json!(reason.desc())
            );
        }
    }
}
