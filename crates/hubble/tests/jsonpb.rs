//! Lines shaped as Hubble writes them (`hubble observe -o jsonpb`, `-o json`, the flow
//! exporter), with what Hubble may add later: they read, and write back what the crate knows.

use fqdnpath_hubble::{
    DropReason, FlowType, GetFlowsResponse, IpVersion, L7FlowType, LostEventSource, NodeState,
    TraceObservationPoint, TrafficDirection, Verdict, compact,
};
use serde_json::{Value, json};

/// A DNS response the proxy saw, as `hubble observe -o jsonpb` prints one: 64-bit integers as
/// strings, `is_reply` as a bool, unset fields left out.
const DNS_RESPONSE: &str = r#"{"flow":{"time":"2024-05-13T09:21:38.519434497Z","uuid":"0b6a6e3c-1f0e-4e4c-9a0e-6b3c1d2e3f40","verdict":"FORWARDED","ethernet":{"source":"4e:1f:2a:3b:4c:5d","destination":"5e:2f:3a:4b:5c:6d"},"IP":{"source":"10.244.0.53","destination":"10.244.1.23","ipVersion":"IPv4"},"l4":{"UDP":{"source_port":53,"destination_port":51234}},"source":{"ID":301,"identity":1043,"cluster_name":"default","namespace":"kube-system","labels":["k8s:io.kubernetes.pod.namespace=kube-system","k8s:k8s-app=kube-dns"],"pod_name":"coredns-5d78c9869d-x2x9k","workloads":[{"name":"coredns","kind":"Deployment"}]},"destination":{"ID":1234,"identity":5678,"cluster_name":"default","namespace":"default","labels":["k8s:app=client"],"pod_name":"client-7c9b8d6f5-abcde"},"Type":"L7","node_name":"kind-worker","node_labels":["kubernetes.io/hostname=kind-worker"],"l7":{"type":"RESPONSE","latency_ns":"1234567","dns":{"query":"github.com.","ips":["140.82.112.3"],"ttl":30,"observation_source":"proxy","qtypes":["A"],"rrtypes":["A"]}},"is_reply":true,"event_type":{"type":129},"traffic_direction":"EGRESS","trace_observation_point":"TO_ENDPOINT","Summary":"DNS Answer \"140.82.112.3\" TTL: 30 (Proxy github.com. A)","egress_allowed_by":[{"name":"client-dns","namespace":"default","labels":["k8s:io.cilium.k8s.policy.derived-from=CiliumNetworkPolicy"],"revision":"12","kind":"CiliumNetworkPolicy"}],"socket_cookie":"18446744073709551615"},"node_name":"kind-worker","time":"2024-05-13T09:21:38.519434497Z"}"#;

/// A policy drop, with what a later Hubble might add: a field, a verdict and a drop reason
/// this crate does not know, a TCP flag set.
const FUTURE_DROP: &str = r#"{"flow":{"time":"2024-05-13T09:21:39Z","verdict":"QUARANTINED","drop_reason":133,"drop_reason_desc":"POLICY_DENIED_BY_SOMETHING_NEW","IP":{"source":"fd00::17","destination":"2001:db8::1","ipVersion":"IPv6"},"l4":{"TCP":{"source_port":40100,"destination_port":443,"flags":{"SYN":true}}},"source":{"ID":17,"identity":4242,"namespace":"default","pod_name":"client"},"destination":{"identity":2,"labels":["reserved:world"]},"Type":"L3_L4","node_name":"kind-worker","event_type":{"type":5,"sub_type":0},"traffic_direction":"EGRESS","policy_match_type":0,"drop_reason_ext":{"code":7},"trace_observation_point":"TO_NEW_PLACE"},"node_name":"kind-worker","time":"2024-05-13T09:21:39Z"}"#;

fn value(line: &str) -> Value {
    serde_json::from_str(line).unwrap()
}

#[test]
fn a_jsonpb_dns_response_reads_with_every_field() {
    let response = GetFlowsResponse::from_json_line(DNS_RESPONSE).unwrap();
    assert_eq!(response.node_name, "kind-worker");
    let flow = response.flow.as_ref().unwrap();
    assert_eq!(flow.verdict, Verdict::Forwarded);
    assert_eq!(flow.flow_type, FlowType::L7);
    assert_eq!(flow.is_reply, Some(true));
    assert_eq!(flow.traffic_direction, TrafficDirection::Egress);
    assert_eq!(
        flow.trace_observation_point,
        TraceObservationPoint::ToEndpoint
    );
    assert_eq!(flow.socket_cookie, Some(u64::MAX));
    assert_eq!(flow.ip.as_ref().unwrap().ip_version, IpVersion::Ipv4);
    let l7 = flow.l7.as_ref().unwrap();
    assert_eq!(l7.l7_type, L7FlowType::Response);
    assert_eq!(l7.latency_ns, Some(1_234_567));
    let dns = l7.dns.as_ref().unwrap();
    assert_eq!(dns.rcode, None, "NOERROR is 0, which jsonpb leaves out");
    assert_eq!(dns.rcode_name(), "NOERROR");
    let policy = &flow.egress_allowed_by.as_ref().unwrap()[0];
    assert_eq!(policy.revision, Some(12));
    let source = flow.source.as_ref().unwrap();
    assert_eq!(source.workloads.as_ref().unwrap()[0].kind, "Deployment");

    // Everything it holds is known: it writes back the same JSON.
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        value(DNS_RESPONSE)
    );
    assert_eq!(
        compact(flow).to_string(),
        "May 13 09:21:38.519 default/client-7c9b8d6f5-abcde dns-response github.com. A NOERROR \
         [140.82.112.3]"
    );
}

#[test]
fn what_a_later_hubble_adds_reads_and_unknown_enum_values_are_kept() {
    let response = GetFlowsResponse::from_json_line(FUTURE_DROP).unwrap();
    let flow = response.flow.as_ref().unwrap();
    assert_eq!(flow.verdict, Verdict::Other("QUARANTINED".into()));
    assert_eq!(
        flow.drop_reason_desc,
        DropReason::Other("POLICY_DENIED_BY_SOMETHING_NEW".into())
    );
    assert_eq!(
        flow.trace_observation_point,
        TraceObservationPoint::Other("TO_NEW_PLACE".into())
    );
    assert_eq!(flow.policy_match_type, Some(0));

    // It writes back all but the field it does not know.
    let mut want = value(FUTURE_DROP);
    want["flow"]
        .as_object_mut()
        .unwrap()
        .remove("drop_reason_ext");
    assert_eq!(serde_json::to_value(&response).unwrap(), want);
    assert_eq!(
        compact(flow).to_string(),
        "May 13 09:21:39.000 default/client:40100 (ID:4242) -> 2001:db8::1:443 (ID:2) \
         QUARANTINED (TCP Flags: SYN)"
    );
}

#[test]
fn camel_case_keys_nulls_numbers_in_strings_and_enum_numbers_read_as_protojson_reads_them() {
    let line = json!({
        "flow": {
            "time": "2024-05-13T09:21:39.5+02:00",
            "verdict": 2,
            "dropReasonDesc": "POLICY_DENY",
            "nodeName": "n1",
            "isReply": false,
            "trafficDirection": null,
            "policyMatchType": "3",
            "IP": {"source": "10.0.0.1", "destination": "10.0.0.2", "ipVersion": 1},
            "l4": {"UDP": {"sourcePort": "5353", "destinationPort": 53}},
            "source": {"ID": "7", "identity": 300, "namespace": null, "podName": "a"},
            "uuid": null,
            "reply": null,
            "l7": null,
        },
        "nodeName": "n1",
    })
    .to_string();
    let response = GetFlowsResponse::from_json_line(&line).unwrap();
    let flow = response.flow.unwrap();
    assert_eq!(flow.verdict, Verdict::Dropped);
    assert_eq!(flow.drop_reason_desc, DropReason::PolicyDeny);
    assert_eq!(flow.node_name, "n1");
    assert_eq!(flow.is_reply, Some(false));
    assert_eq!(flow.traffic_direction, TrafficDirection::default());
    assert_eq!(flow.policy_match_type, Some(3));
    let udp = flow.l4.as_ref().unwrap().udp.as_ref().unwrap();
    assert_eq!(
        (udp.source_port, udp.destination_port),
        (Some(5353), Some(53))
    );
    assert_eq!(flow.source.as_ref().unwrap().id, Some(7));
    assert_eq!(
        compact(&flow).to_string(),
        "May 13 07:21:39.500 a:5353 (ID:300) -> 10.0.0.2:53 (ID:0) policy-verdict:L4-Only \
         TRAFFIC_DIRECTION_UNKNOWN DENIED (UDP) DROPPED (Policy denied by denylist)"
    );
    // Written back, the keys are the proto names and the enums their names.
    let written = serde_json::to_value(GetFlowsResponse::from_flow(flow)).unwrap();
    assert_eq!(written["flow"]["drop_reason_desc"], "POLICY_DENY");
    assert_eq!(written["flow"]["verdict"], "DROPPED");
    assert_eq!(written["flow"]["IP"]["ipVersion"], "IPv4");
    assert_eq!(written["flow"]["source"]["ID"], 7);
    assert_eq!(written["node_name"], "n1");
    assert_eq!(written["time"], "2024-05-13T09:21:39.5+02:00");
}

#[test]
fn a_bare_flow_reads_as_an_event_of_its_node_and_time() {
    let bare = value(DNS_RESPONSE)["flow"].to_string();
    let response = GetFlowsResponse::from_json_line(&bare).unwrap();
    let wrapped = GetFlowsResponse::from_json_line(DNS_RESPONSE).unwrap();
    assert_eq!(response, wrapped);
}

#[test]
fn node_status_and_lost_events_read() {
    let status = GetFlowsResponse::from_json_line(
        r#"{"node_status":{"state_change":"NODE_CONNECTED","node_names":["a","b"]},"time":"2024-05-13T09:21:00Z"}"#,
    )
    .unwrap();
    let node_status = status.node_status.unwrap();
    assert_eq!(node_status.state_change, NodeState::NodeConnected);
    assert_eq!(node_status.node_names.unwrap(), ["a", "b"]);
    assert!(status.flow.is_none());

    let line = r#"{"lost_events":{"source":"PERF_EVENT_RING_BUFFER","num_events_lost":"3","cpu":2},"node_name":"n1","time":"2024-05-13T09:21:00Z"}"#;
    let lost = GetFlowsResponse::from_json_line(line).unwrap();
    let events = lost.lost_events.as_ref().unwrap();
    assert_eq!(events.source, LostEventSource::PerfEventRingBuffer);
    assert_eq!(events.num_events_lost, Some(3));
    assert_eq!(events.cpu, Some(2));
    assert_eq!(serde_json::to_value(&lost).unwrap(), value(line));
}

#[test]
fn a_line_that_is_not_an_event_is_an_error_that_says_where() {
    for (line, says) in [
        ("", "EOF"),
        ("not json", "expected ident"),
        ("[1, 2]", "invalid type"),
        (r#"{"flow": 7}"#, "invalid type"),
        (r#"{"flow": {"time": "yesterday"}}"#, "not an RFC 3339 time"),
        (
            r#"{"flow": {"IP": {"ipVersion": 1.5}}}"#,
            "IpVersion (a name or a number)",
        ),
        (
            r#"{"flow": {"policy_match_type": -1}}"#,
            "an integer of u32",
        ),
        (r#"{"flow": {"verdict": "FORWARDED""#, "EOF"),
    ] {
        let err = GetFlowsResponse::from_json_line(line)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("not a Hubble event: "), "{line}: {err}");
        assert!(err.contains(says), "{line}: {err}");
        assert!(err.contains("column"), "{line}: {err}");
    }
}

#[test]
fn an_empty_object_is_an_empty_event() {
    let response = GetFlowsResponse::from_json_line("{}").unwrap();
    assert_eq!(response, GetFlowsResponse::default());
}
