//! Hubble's view of a run: each flow and each DNS answer as a line of text in the style of
//! `hubble observe`, and as the JSON object `hubble observe -o json` prints.
//!
//! Self-contained: it knows Hubble's format and nothing of the simulation's state, which hands
//! it plain values (the event, the names of both ends, their identities and labels).

use std::net::IpAddr;

use fqdnpath_cache::{EndpointId, Observation, Timestamp};
use fqdnpath_datapath::{FlowEvent, Verdict};
use fqdnpath_policy::policymap::{MatchType, PROTO_UDP};

use super::clock;

/// One line of output: a flow or a DNS answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// When.
    pub time: Timestamp,
    /// The text, in the style of `hubble observe`.
    pub text: String,
    /// The same event as `hubble observe -o json` prints it:
    /// `{"flow": {...}, "node_name": ..., "time": ...}`; `null` unless the simulation was
    /// made [`Simulation::with_json`](super::Simulation::with_json).
    pub json: serde_json::Value,
}

/// One end of a flow, as Hubble's JSON shows it.
pub(super) struct Peer<'a> {
    /// The pod at the address, if there is one: endpoint ID, namespace and name.
    pub(super) pod: Option<(EndpointId, &'a str, &'a str)>,
    /// The numeric identity.
    pub(super) identity: u32,
    /// The identity's labels.
    pub(super) labels: Vec<String>,
}

impl Peer<'_> {
    fn json(&self) -> serde_json::Value {
        match self.pod {
            Some((endpoint, namespace, name)) => serde_json::json!({
                "ID": endpoint,
                "identity": self.identity,
                "namespace": namespace,
                "pod_name": name,
                "labels": self.labels,
            }),
            None => serde_json::json!({"identity": self.identity, "labels": self.labels}),
        }
    }
}

/// A flow's text: `<time> <src>:<port> (ID:<identity>) -> <dst>:<port> (ID:<identity>)
/// <verdict>`, with `src` and `dst` the pods' `namespace/name` or the addresses.
pub(super) fn flow_text(event: &FlowEvent, src: &str, dst: &str) -> String {
    let p = &event.packet;
    let proto = protocol_name(p.proto);
    let verdict = match event.verdict {
        Verdict::Dropped => format!(
            "policy-verdict:{} EGRESS DENIED ({proto}) DROPPED (Policy denied)",
            MatchType::verdict_label(event.match_type)
        ),
        Verdict::Forwarded if event.is_reply => format!("to-endpoint FORWARDED ({proto})"),
        Verdict::Forwarded => format!(
            "policy-verdict:{} EGRESS ALLOWED ({proto}) FORWARDED",
            MatchType::verdict_label(event.match_type)
        ),
        Verdict::Redirected => format!(
            "policy-verdict:{} EGRESS ALLOWED ({proto}) REDIRECTED (to-proxy)",
            MatchType::verdict_label(event.match_type)
        ),
    };
    let verdict = if event.drop_reason.is_some_and(|r| r.desc() == "POLICY_DENY") {
        verdict.replace(
            "DROPPED (Policy denied)",
            "DROPPED (Policy denied by denylist)",
        )
    } else {
        verdict
    };
    format!(
        "{} {src}:{} (ID:{}) -> {dst}:{} (ID:{}) {verdict}",
        clock::text(event.time),
        p.sport,
        event.src_identity,
        p.dport,
        event.dst_identity,
    )
}

/// A flow's JSON, seen on `node`; `names` are the DNS names the node's agent knows for the
/// destination.
pub(super) fn flow_json(
    event: &FlowEvent,
    node: &str,
    source: &Peer<'_>,
    destination: &Peer<'_>,
    names: &[String],
) -> serde_json::Value {
    let p = &event.packet;
    let proto = protocol_name(p.proto);
    let mut flow = serde_json::json!({
        "time": clock::rfc3339(event.time),
        "verdict": event.verdict.name(),
        "Type": "L3_L4",
        "node_name": node,
        "event_type": {"type": if event.verdict == Verdict::Dropped { 1 } else { 5 }},
        "traffic_direction": "EGRESS",
        "is_reply": event.is_reply,
        "IP": {
            "source": p.src.to_string(),
            "destination": p.dst.to_string(),
            "ipVersion": if p.src.is_ipv4() { "IPv4" } else { "IPv6" },
        },
        "l4": {proto: {"source_port": p.sport, "destination_port": p.dport}},
        "source": source.json(),
        "destination": destination.json(),
        "destination_names": names,
        "policy_match_type": event.match_type.map_or(0, |m| m as u8),
    });
    if let Some(reason) = event.drop_reason {
        flow["drop_reason"] = serde_json::json!(reason as u8);
        flow["drop_reason_desc"] = serde_json::json!(reason.desc());
    }
    serde_json::json!({"flow": flow, "node_name": node, "time": clock::rfc3339(event.time)})
}

/// A DNS answer's text: `<time> <pod> dns-response <name> <type> <rcode> [<addresses>]`.
pub(super) fn dns_text(time: Timestamp, pod: &str, qname: &str, answer: &Observation) -> String {
    format!(
        "{} {pod} dns-response {qname} {} {} [{}]",
        clock::text(time),
        answer.qtype,
        answer.rcode_name(),
        addresses(answer).join(",")
    )
}

/// A DNS answer's JSON: the L7 response to `pod`, on `node`.
pub(super) fn dns_json(
    time: Timestamp,
    node: &str,
    pod: &Peer<'_>,
    qname: &str,
    answer: &Observation,
) -> serde_json::Value {
    let flow = serde_json::json!({
        "time": clock::rfc3339(time),
        "verdict": "FORWARDED",
        "Type": "L7",
        "node_name": node,
        "event_type": {"type": 129},
        "traffic_direction": "EGRESS",
        "is_reply": true,
        "destination": pod.json(),
        "l7": {
            "type": "RESPONSE",
            "dns": {
                "query": qname,
                "ips": addresses(answer),
                "ttl": if answer.ttl == u32::MAX { 0 } else { answer.ttl },
                "cnames": answer.cnames,
                "rcode": u16::from(answer.rcode),
                "qtypes": [answer.qtype.to_string()],
            },
        },
    });
    serde_json::json!({"flow": flow, "node_name": node, "time": clock::rfc3339(time)})
}

/// Hubble's name of a flow's transport (the simulator's flows are TCP or UDP).
fn protocol_name(proto: u8) -> &'static str {
    if proto == PROTO_UDP { "UDP" } else { "TCP" }
}

fn addresses(answer: &Observation) -> Vec<String> {
    answer.addresses.iter().map(IpAddr::to_string).collect()
}
