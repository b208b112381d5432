use crate::{
    Dns, DropReason, Endpoint, Flow, Http, Ip, L7FlowType, Layer4, Layer7, TcpFlags, Time,
    TrafficDirection, Verdict, compact,
};

/// A flow from `default/client` to 198.51.100.10:8080, as the kernel demo sees one.
fn demo_flow(verdict: Verdict) -> Flow {
    Flow {
        time: Some(Time::parse("2026-11-29T16:00:00.123456789Z").unwrap()),
        verdict,
        traffic_direction: TrafficDirection::Egress,
        is_reply: Some(false),
        ip: Some(Ip::new([10, 0, 0, 2].into(), [198, 51, 100, 10].into())),
        l4: Some(Layer4::tcp(41000, 8080)),
        source: Some(Endpoint {
            identity: Some(256),
            namespace: "default".into(),
            pod_name: "client".into(),
            ..Endpoint::default()
        }),
        destination: Some(Endpoint {
            identity: Some(16_777_217),
            ..Endpoint::default()
        }),
        ..Flow::default()
    }
}

fn with_flags(mut flow: Flow, flags: TcpFlags) -> Flow {
    if let Some(tcp) = flow.l4.as_mut().and_then(|l4| l4.tcp.as_mut()) {
        tcp.flags = Some(flags);
    }
    flow
}

/// Asserts that the compact line of `flow` ends with `tail`.
#[track_caller]
fn assert_line_ends_with(flow: &Flow, tail: &str) {
    let line = compact(flow).to_string();
    assert!(line.ends_with(tail), "{line:?} does not end with {tail:?}");
}

#[test]
fn tcp_flags_are_printed_only_when_the_flow_has_them() {
    let flow = demo_flow(Verdict::Forwarded);
    let flow = Flow {
        policy_match_type: Some(2),
        ..flow
    };
    assert_eq!(
        compact(&flow).to_string(),
        "Nov 29 16:00:00.123 default/client:41000 (ID:256) -> 198.51.100.10:8080 (ID:16777217) \
         policy-verdict:L3-L4 EGRESS ALLOWED (TCP) FORWARDED"
    );
    let syn = TcpFlags {
        syn: true,
        ..TcpFlags::default()
    };
    assert_line_ends_with(
        &with_flags(flow, syn),
        "policy-verdict:L3-L4 EGRESS ALLOWED (TCP Flags: SYN) FORWARDED",
    );
    // The kernel demo's denied connect.
    let denied = Flow {
        drop_reason_desc: DropReason::PolicyDenied,
        destination: Some(Endpoint {
            identity: Some(2),
            ..Endpoint::default()
        }),
        ..with_flags(demo_flow(Verdict::Dropped), syn)
    };
    assert_line_ends_with(
        &denied,
        "-> 198.51.100.10:8080 (ID:2) policy-verdict:none EGRESS DENIED (TCP Flags: SYN) DROPPED \
         (Policy denied)",
    );
}

#[test]
fn flags_are_listed_in_hubbles_order() {
    let all = TcpFlags {
        fin: true,
        syn: true,
        rst: true,
        psh: true,
        ack: true,
        urg: true,
        ece: true,
        cwr: true,
        ns: true,
    };
    let names: Vec<_> = all.names().collect();
    assert_eq!(
        names,
        ["SYN", "ACK", "RST", "FIN", "PSH", "URG", "ECE", "CWR", "NS"]
    );
}

#[test]
fn a_reply_or_an_ingress_packet_forwarded_goes_to_the_endpoint() {
    let ack = TcpFlags {
        syn: true,
        ack: true,
        ..TcpFlags::default()
    };
    let reply = Flow {
        is_reply: Some(true),
        ..with_flags(demo_flow(Verdict::Forwarded), ack)
    };
    assert_line_ends_with(&reply, " to-endpoint FORWARDED (TCP Flags: SYN, ACK)");
    let ingress = Flow {
        traffic_direction: TrafficDirection::Ingress,
        ..demo_flow(Verdict::Forwarded)
    };
    assert_line_ends_with(&ingress, " to-endpoint FORWARDED (TCP)");
}

#[test]
fn a_drop_says_its_direction_and_cilium_s_reason() {
    use DropReason as R;
    use TrafficDirection::{Egress, Ingress};
    let drop = |reason: DropReason, direction: TrafficDirection| {
        let flow = Flow {
            drop_reason_desc: reason,
            traffic_direction: direction,
            ..demo_flow(Verdict::Dropped)
        };
        let line = compact(&flow).to_string();
        line.split_once(") policy-verdict:").unwrap().1.to_owned()
    };
    let cases = [
        (
            R::default(),
            Egress,
            "none EGRESS DENIED (TCP) DROPPED (Policy denied)",
        ),
        (
            R::PolicyDenied,
            Ingress,
            "none INGRESS DENIED (TCP) DROPPED (Policy denied)",
        ),
        (
            R::PolicyDeny,
            Egress,
            "none EGRESS DENIED (TCP) DROPPED (Policy denied by denylist)",
        ),
        (
            R::CtMapInsertionFailed,
            Egress,
            "none EGRESS DENIED (TCP) DROPPED (CT: Map insertion failed)",
        ),
        (
            R::AuthRequired,
            Egress,
            "none EGRESS DENIED (TCP) DROPPED (AUTH_REQUIRED)",
        ),
        (
            R::Other("NEW_REASON".into()),
            Egress,
            "none EGRESS DENIED (TCP) DROPPED (NEW_REASON)",
        ),
        (
            R::OtherNumber(250),
            Egress,
            "none EGRESS DENIED (TCP) DROPPED (250)",
        ),
    ];
    for (reason, direction, want) in cases {
        assert_eq!(drop(reason, direction), want);
    }
}

#[test]
fn the_deprecated_drop_reason_number_stands_in_for_a_missing_description() {
    let flow = Flow {
        drop_reason: Some(181),
        ..demo_flow(Verdict::Dropped)
    };
    assert_line_ends_with(&flow, "DROPPED (Policy denied by denylist)");
}

#[test]
fn other_verdicts_and_missing_parts_still_make_a_line() {
    let flow = Flow {
        time: None,
        l4: None,
        ip: None,
        source: None,
        ..demo_flow(Verdict::Traced)
    };
    assert_eq!(
        compact(&flow).to_string(),
        "N/A unknown (ID:0) -> unknown (ID:16777217) TRACED (unknown protocol)"
    );
    let ipv6 = Flow {
        ip: Some(Ip::new(
            "fd00::10".parse().unwrap(),
            "2001:db8::80".parse().unwrap(),
        )),
        l4: Some(Layer4::udp(40000, 53)),
        source: None,
        ..demo_flow(Verdict::Audit)
    };
    assert_eq!(
        compact(&ipv6).to_string(),
        "Nov 29 16:00:00.123 fd00::10:40000 (ID:0) -> 2001:db8::80:53 (ID:16777217) AUDIT (UDP)"
    );
}

#[test]
fn dns_messages_name_the_pod_that_asked() {
    let dns = |l7_type: L7FlowType, rcode: Option<u32>| Flow {
        l7: Some(Layer7 {
            l7_type,
            dns: Some(Dns {
                query: "app.demo.test.".into(),
                ips: Some(vec!["198.51.100.10".into(), "198.51.100.11".into()]),
                rcode,
                qtypes: Some(vec!["A".into()]),
                ..Dns::default()
            }),
            ..Layer7::default()
        }),
        ip: None,
        l4: None,
        ..demo_flow(Verdict::Forwarded)
    };
    let response = Flow {
        destination: Some(Endpoint {
            namespace: "default".into(),
            pod_name: "client".into(),
            ..Endpoint::default()
        }),
        source: None,
        ..dns(L7FlowType::Response, None)
    };
    assert_eq!(
        compact(&response).to_string(),
        "Nov 29 16:00:00.123 default/client dns-response app.demo.test. A NOERROR \
         [198.51.100.10,198.51.100.11]"
    );
    let refused = Flow {
        destination: response.destination.clone(),
        ..dns(L7FlowType::Response, Some(5))
    };
    assert!(compact(&refused).to_string().contains(" A REFUSED ["));
    let odd = Flow {
        destination: response.destination.clone(),
        ..dns(L7FlowType::Response, Some(23))
    };
    assert!(compact(&odd).to_string().contains(" A RCODE23 ["));
    assert_eq!(
        compact(&dns(L7FlowType::Request, None)).to_string(),
        "Nov 29 16:00:00.123 default/client dns-request app.demo.test. A"
    );
}

#[test]
fn another_l7_flow_says_its_kind() {
    let flow = Flow {
        l7: Some(Layer7 {
            l7_type: L7FlowType::Request,
            http: Some(Http {
                method: "GET".into(),
                ..Http::default()
            }),
            ..Layer7::default()
        }),
        ..demo_flow(Verdict::Forwarded)
    };
    assert_line_ends_with(
        &flow,
        "-> 198.51.100.10:8080 (ID:16777217) http-request FORWARDED",
    );
}
