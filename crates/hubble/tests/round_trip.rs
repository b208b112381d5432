//! Any value of the model writes to JSON and reads back equal: every field, set or unset, zero
//! or not, and enum values this crate does not know.

use fqdnpath_hubble::{
    Aggregate, AuthType, CiliumEventType, DebugCapturePoint, Dns, DropReason, Emitter, Endpoint,
    Ethernet, FileInfo, Flow, FlowType, GetFlowsResponse, Http, HttpHeader, Icmp, Igmp, Ip,
    IpTraceId, IpVersion, Kafka, L7FlowType, Layer4, Layer7, LostEvent, LostEventSource,
    NetworkInterface, NodeState, NodeStatusEvent, Policy, Sctp, Service, SocketTranslationPoint,
    Tcp, TcpFlags, Time, TraceContext, TraceObservationPoint, TraceParent, TraceReason,
    TrafficDirection, Tunnel, TunnelProtocol, Udp, Verdict, Vrrp, Workload,
};
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};

/// A value of a proto enum: mostly named ones, sometimes a name or a number it does not know.
macro_rules! proto_enum {
    ($t:ty) => {
        prop_oneof![
            4 => proptest::sample::select(<$t>::NAMED),
            1 => "[A-Z][A-Z0-9_]{0,15}".prop_map(|s| <$t>::from_name(&s)),
            1 => any::<i32>().prop_map(<$t>::from_number),
        ]
    };
}

/// A message, each field from the strategy written beside it: `message!(Tcp { source_port:
/// any::<Option<u32>>(), ... })`. Every field is named (the struct literal it builds checks
/// that none is missed). The strategies nest in pairs, `(a, (b, (c, Just(()))))`, so that a
/// message may have more fields than a tuple strategy holds (twelve).
macro_rules! message {
    (@nest) => { Just(()) };
    (@nest $first:expr $(, $rest:expr)*) => { ($first, message!(@nest $($rest),*)) };
    (@pattern) => { () };
    (@pattern $first:ident $(, $rest:ident)*) => { ($first, message!(@pattern $($rest),*)) };
    ($message:ident { $($field:ident: $strategy:expr),+ $(,)? }) => {
        message!(@nest $($strategy),+)
            .prop_map(|message!(@pattern $($field),+)| $message { $($field),+ })
            .boxed()
    };
}

fn text() -> BoxedStrategy<String> {
    prop_oneof![Just(String::new()), "[a-z0-9:./=-]{1,12}", any::<String>()].boxed()
}

fn texts() -> BoxedStrategy<Option<Vec<String>>> {
    of(vec(text(), 0..3)).boxed()
}

/// An unset list, or a list of up to two items.
fn list<T: std::fmt::Debug + 'static>(item: BoxedStrategy<T>) -> BoxedStrategy<Option<Vec<T>>> {
    of(vec(item, 0..2)).boxed()
}

/// A time in every form protojson writes and reads: 0 to 9 fractional digits, `Z` or an
/// offset.
fn time() -> BoxedStrategy<Time> {
    (
        -62_135_596_800_i64..253_402_300_799,
        0..1_000_000_000_i32,
        0..4_usize,
        prop_oneof![Just(None), (-1439..1440_i32).prop_map(Some)],
    )
        .prop_map(|(secs, nanos, digits, offset)| {
            let at = jiff::Timestamp::new(secs, nanos).unwrap();
            let text = match offset {
                None => match digits {
                    0 => format!("{at:.0}"),
                    1 => format!("{at:.3}"),
                    2 => format!("{at:.6}"),
                    _ => format!("{at:.9}"),
                },
                Some(minutes) => {
                    let offset = jiff::tz::Offset::from_seconds(minutes * 60).unwrap();
                    let dt = offset.to_datetime(at);
                    let sign = if minutes < 0 { '-' } else { '+' };
                    let m = minutes.unsigned_abs();
                    format!("{dt}{sign}{:02}:{:02}", m / 60, m % 60)
                }
            };
            Time::parse(&text).unwrap_or_else(|e| panic!("{e}"))
        })
        .boxed()
}

fn endpoint() -> BoxedStrategy<Endpoint> {
    message!(Endpoint {
        id: any::<Option<u32>>(),
        identity: any::<Option<u32>>(),
        cluster_name: text(),
        namespace: text(),
        labels: texts(),
        pod_name: text(),
        workloads: list(message!(Workload {
            name: text(),
            kind: text(),
        })),
    })
}

fn policies() -> BoxedStrategy<Option<Vec<Policy>>> {
    list(message!(Policy {
        name: text(),
        namespace: text(),
        labels: texts(),
        revision: any::<Option<u64>>(),
        kind: text(),
    }))
}

fn ip() -> BoxedStrategy<Ip> {
    message!(Ip {
        source: text(),
        source_xlated: text(),
        destination: text(),
        ip_version: proto_enum!(IpVersion),
        encrypted: any::<bool>(),
    })
}

fn tcp_flags() -> BoxedStrategy<TcpFlags> {
    message!(TcpFlags {
        fin: any::<bool>(),
        syn: any::<bool>(),
        rst: any::<bool>(),
        psh: any::<bool>(),
        ack: any::<bool>(),
        urg: any::<bool>(),
        ece: any::<bool>(),
        cwr: any::<bool>(),
        ns: any::<bool>(),
    })
}

fn icmp() -> BoxedStrategy<Option<Icmp>> {
    of(message!(Icmp {
        icmp_type: any::<Option<u32>>(),
        code: any::<Option<u32>>(),
    }))
    .boxed()
}

fn layer4() -> BoxedStrategy<Layer4> {
    message!(Layer4 {
        tcp: of(message!(Tcp {
            source_port: any::<Option<u32>>(),
            destination_port: any::<Option<u32>>(),
            flags: of(tcp_flags()),
        })),
        udp: of(message!(Udp {
            source_port: any::<Option<u32>>(),
            destination_port: any::<Option<u32>>(),
        })),
        icmpv4: icmp(),
        icmpv6: icmp(),
        sctp: of(message!(Sctp {
            source_port: any::<Option<u32>>(),
            destination_port: any::<Option<u32>>(),
        })),
        vrrp: of(message!(Vrrp {
            vrrp_type: any::<Option<u32>>(),
            vrid: any::<Option<u32>>(),
            priority: any::<Option<u32>>(),
        })),
        igmp: of(message!(Igmp {
            igmp_type: any::<Option<u32>>(),
            group_address: text(),
        })),
    })
}

fn tunnel() -> BoxedStrategy<Tunnel> {
    message!(Tunnel {
        protocol: proto_enum!(TunnelProtocol),
        ip: of(ip()),
        l4: of(layer4()),
        vni: any::<Option<u32>>(),
    })
}

fn layer7() -> BoxedStrategy<Layer7> {
    message!(Layer7 {
        l7_type: proto_enum!(L7FlowType),
        latency_ns: any::<Option<u64>>(),
        dns: of(message!(Dns {
            query: text(),
            ips: texts(),
            ttl: any::<Option<u32>>(),
            cnames: texts(),
            observation_source: text(),
            rcode: any::<Option<u32>>(),
            qtypes: texts(),
            rrtypes: texts(),
        })),
        http: of(message!(Http {
            code: any::<Option<u32>>(),
            method: text(),
            url: text(),
            protocol: text(),
            headers: list(message!(HttpHeader {
                key: text(),
                value: text(),
            })),
        })),
        kafka: of(message!(Kafka {
            error_code: any::<Option<i32>>(),
            api_version: any::<Option<i32>>(),
            api_key: text(),
            correlation_id: any::<Option<i32>>(),
            topic: text(),
        })),
    })
}

fn service() -> BoxedStrategy<Option<Service>> {
    of(message!(Service {
        name: text(),
        namespace: text(),
    }))
    .boxed()
}

fn flow() -> BoxedStrategy<Flow> {
    message!(Flow {
        time: of(time()),
        uuid: text(),
        emitter: of(message!(Emitter {
            name: text(),
            version: text(),
        })),
        verdict: proto_enum!(Verdict),
        drop_reason: any::<Option<u32>>(),
        auth_type: proto_enum!(AuthType),
        ethernet: of(message!(Ethernet {
            source: text(),
            destination: text(),
        })),
        ip: of(ip()),
        l4: of(layer4()),
        tunnel: of(tunnel()),
        source: of(endpoint()),
        destination: of(endpoint()),
        flow_type: proto_enum!(FlowType),
        node_name: text(),
        node_labels: texts(),
        source_names: texts(),
        destination_names: texts(),
        l7: of(layer7()),
        reply: any::<bool>(),
        event_type: of(message!(CiliumEventType {
            event_type: any::<Option<i32>>(),
            sub_type: any::<Option<i32>>(),
        })),
        source_service: service(),
        destination_service: service(),
        traffic_direction: proto_enum!(TrafficDirection),
        policy_match_type: any::<Option<u32>>(),
        trace_observation_point: proto_enum!(TraceObservationPoint),
        trace_reason: proto_enum!(TraceReason),
        file: of(message!(FileInfo {
            name: text(),
            line: any::<Option<u32>>(),
        })),
        ip_trace_id: of(message!(IpTraceId {
            trace_id: any::<Option<u64>>(),
            ip_option_type: any::<Option<u32>>(),
        })),
        drop_reason_desc: proto_enum!(DropReason),
        is_reply: any::<Option<bool>>(),
        debug_capture_point: proto_enum!(DebugCapturePoint),
        interface: of(message!(NetworkInterface {
            index: any::<Option<u32>>(),
            name: text(),
        })),
        proxy_port: any::<Option<u32>>(),
        trace_context: of(message!(TraceContext {
            parent: of(message!(TraceParent { trace_id: text() })),
        })),
        sock_xlate_point: proto_enum!(SocketTranslationPoint),
        socket_cookie: any::<Option<u64>>(),
        cgroup_id: any::<Option<u64>>(),
        summary: text(),
        extensions: of(
            (text(), text()).prop_map(|(t, v)| serde_json::json!({"@type": t, "value": v}))
        ),
        egress_allowed_by: policies(),
        ingress_allowed_by: policies(),
        egress_denied_by: policies(),
        ingress_denied_by: policies(),
        policy_log: texts(),
        aggregate: of(message!(Aggregate {
            ingress_flow_count: any::<Option<u32>>(),
            egress_flow_count: any::<Option<u32>>(),
            unknown_direction_flow_count: any::<Option<u32>>(),
        })),
    })
}

fn response() -> BoxedStrategy<GetFlowsResponse> {
    message!(GetFlowsResponse {
        flow: of(flow()),
        node_status: of(message!(NodeStatusEvent {
            state_change: proto_enum!(NodeState),
            node_names: texts(),
            message: text(),
        })),
        lost_events: of(message!(LostEvent {
            source: proto_enum!(LostEventSource),
            num_events_lost: any::<Option<u64>>(),
            cpu: any::<Option<i32>>(),
            first: of(time()),
            last: of(time()),
        })),
        node_name: text(),
        time: of(time()),
    })
}

/// Runs `test` on cases of the strategy `make` builds, on a thread with a large stack: the
/// value trees of a whole flow are deep, and unoptimised they need more than the 2 MiB of a
/// test thread.
fn check<S, F>(make: fn() -> S, test: F)
where
    S: Strategy + 'static,
    F: Fn(S::Value) -> Result<(), TestCaseError> + Send + 'static,
{
    let thread = std::thread::Builder::new()
        .stack_size(16 << 20)
        .spawn(move || {
            let config = ProptestConfig {
                source_file: Some(file!()),
                ..ProptestConfig::default()
            };
            let mut runner = TestRunner::new(config);
            if let Err(e) = runner.run(&make(), test) {
                panic!("{e}");
            }
        })
        .unwrap();
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

/// Checks that `value` reads back equal from its JSON, as text and as a `serde_json::Value`;
/// returns the text.
fn reads_back<T>(value: &T) -> Result<String, TestCaseError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let json = serde_json::to_string(value).unwrap();
    let back: T = serde_json::from_str(&json).unwrap();
    prop_assert_eq!(&back, value, "{}", json);
    let tree = serde_json::to_value(value).unwrap();
    prop_assert_eq!(&serde_json::from_value::<T>(tree).unwrap(), value);
    Ok(json)
}

#[test]
fn a_flow_reads_back_from_its_json() {
    check(flow, |flow| reads_back(&flow).map(drop));
}

#[test]
fn a_response_reads_back_from_its_json() {
    check(response, |response| {
        let json = reads_back(&response)?;
        if response.flow.is_some()
            || response.node_status.is_some()
            || response.lost_events.is_some()
        {
            prop_assert_eq!(GetFlowsResponse::from_json_line(&json).unwrap(), response);
        }
        Ok(())
    });
}

#[test]
fn the_compact_form_never_fails() {
    check(flow, |flow| {
        let line = fqdnpath_hubble::compact(&flow).to_string();
        prop_assert!(!line.is_empty());
        Ok(())
    });
}
