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

fn text() -> BoxedStrategy<String> {
    prop_oneof![Just(String::new()), "[a-z0-9:./=-]{1,12}", any::<String>()].boxed()
}

fn texts() -> BoxedStrategy<Option<Vec<String>>> {
    of(vec(text(), 0..3)).boxed()
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
    (
        any::<Option<u32>>(),
        any::<Option<u32>>(),
        text(),
        text(),
        texts(),
        text(),
        of(vec((text(), text()), 0..2)),
    )
        .prop_map(
            |(id, identity, cluster_name, namespace, labels, pod_name, workloads)| Endpoint {
                id,
                identity,
                cluster_name,
                namespace,
                labels,
                pod_name,
                workloads: workloads.map(|w| {
                    w.into_iter()
                        .map(|(name, kind)| Workload { name, kind })
                        .collect()
                }),
            },
        )
        .boxed()
}

fn policies() -> BoxedStrategy<Option<Vec<Policy>>> {
    of(vec(
        (text(), text(), texts(), any::<Option<u64>>(), text()).prop_map(
            |(name, namespace, labels, revision, kind)| Policy {
                name,
                namespace,
                labels,
                revision,
                kind,
            },
        ),
        0..2,
    ))
    .boxed()
}

fn ip() -> BoxedStrategy<Ip> {
    (
        text(),
        text(),
        text(),
        proto_enum!(IpVersion),
        any::<bool>(),
    )
        .prop_map(
            |(source, source_xlated, destination, ip_version, encrypted)| Ip {
                source,
                source_xlated,
                destination,
                ip_version,
                encrypted,
            },
        )
        .boxed()
}

fn tcp_flags() -> BoxedStrategy<TcpFlags> {
    any::<[bool; 9]>()
        .prop_map(|f| TcpFlags {
            fin: f[0],
            syn: f[1],
            rst: f[2],
            psh: f[3],
            ack: f[4],
            urg: f[5],
            ece: f[6],
            cwr: f[7],
            ns: f[8],
        })
        .boxed()
}

fn ports() -> BoxedStrategy<(Option<u32>, Option<u32>)> {
    (any::<Option<u32>>(), any::<Option<u32>>()).boxed()
}

fn icmp() -> BoxedStrategy<Option<Icmp>> {
    of(ports().prop_map(|(icmp_type, code)| Icmp { icmp_type, code })).boxed()
}

fn layer4() -> BoxedStrategy<Layer4> {
    (
        of((ports(), of(tcp_flags()))),
        of(ports()),
        icmp(),
        icmp(),
        of(ports()),
        of((ports(), any::<Option<u32>>())),
        of((any::<Option<u32>>(), text())),
    )
        .prop_map(|(tcp, udp, icmpv4, icmpv6, sctp, vrrp, igmp)| Layer4 {
            tcp: tcp.map(|((source_port, destination_port), flags)| Tcp {
                source_port,
                destination_port,
                flags,
            }),
            udp: udp.map(|(source_port, destination_port)| Udp {
                source_port,
                destination_port,
            }),
            icmpv4,
            icmpv6,
            sctp: sctp.map(|(source_port, destination_port)| Sctp {
                source_port,
                destination_port,
            }),
            vrrp: vrrp.map(|((vrrp_type, vrid), priority)| Vrrp {
                vrrp_type,
                vrid,
                priority,
            }),
            igmp: igmp.map(|(igmp_type, group_address)| Igmp {
                igmp_type,
                group_address,
            }),
        })
        .boxed()
}

fn tunnel() -> BoxedStrategy<Tunnel> {
    (
        proto_enum!(TunnelProtocol),
        of(ip()),
        of(layer4()),
        any::<Option<u32>>(),
    )
        .prop_map(|(protocol, ip, l4, vni)| Tunnel {
            protocol,
            ip,
            l4,
            vni,
        })
        .boxed()
}

fn dns() -> BoxedStrategy<Dns> {
    (
        text(),
        texts(),
        any::<Option<u32>>(),
        texts(),
        text(),
        any::<Option<u32>>(),
        texts(),
        texts(),
    )
        .prop_map(
            |(query, ips, ttl, cnames, observation_source, rcode, qtypes, rrtypes)| Dns {
                query,
                ips,
                ttl,
                cnames,
                observation_source,
                rcode,
                qtypes,
                rrtypes,
            },
        )
        .boxed()
}

fn http() -> BoxedStrategy<Http> {
    (
        any::<Option<u32>>(),
        text(),
        text(),
        text(),
        of(vec((text(), text()), 0..2)),
    )
        .prop_map(|(code, method, url, protocol, headers)| Http {
            code,
            method,
            url,
            protocol,
            headers: headers.map(|h| {
                h.into_iter()
                    .map(|(key, value)| HttpHeader { key, value })
                    .collect()
            }),
        })
        .boxed()
}

fn kafka() -> BoxedStrategy<Kafka> {
    (
        any::<Option<i32>>(),
        any::<Option<i32>>(),
        text(),
        any::<Option<i32>>(),
        text(),
    )
        .prop_map(
            |(error_code, api_version, api_key, correlation_id, topic)| Kafka {
                error_code,
                api_version,
                api_key,
                correlation_id,
                topic,
            },
        )
        .boxed()
}

fn layer7() -> BoxedStrategy<Layer7> {
    (
        proto_enum!(L7FlowType),
        any::<Option<u64>>(),
        of(dns()),
        of(http()),
        of(kafka()),
    )
        .prop_map(|(l7_type, latency_ns, dns, http, kafka)| Layer7 {
            l7_type,
            latency_ns,
            dns,
            http,
            kafka,
        })
        .boxed()
}

fn service() -> BoxedStrategy<Option<Service>> {
    of((text(), text()).prop_map(|(name, namespace)| Service { name, namespace })).boxed()
}

fn extensions() -> BoxedStrategy<Option<serde_json::Value>> {
    of((text(), text()).prop_map(|(t, v)| serde_json::json!({"@type": t, "value": v}))).boxed()
}

#[expect(
    clippy::too_many_lines,
    reason = "one strategy for each of the flow's 45 fields, in the proto's order"
)]
fn flow() -> BoxedStrategy<Flow> {
    let head = (
        of(time()),
        text(),
        of((text(), text()).prop_map(|(name, version)| Emitter { name, version })),
        proto_enum!(Verdict),
        any::<Option<u32>>(),
        proto_enum!(AuthType),
        of((text(), text()).prop_map(|(source, destination)| Ethernet {
            source,
            destination,
        })),
        of(ip()),
        of(layer4()),
        of(tunnel()),
    );
    let ends = (
        of(endpoint()),
        of(endpoint()),
        proto_enum!(FlowType),
        text(),
        texts(),
        texts(),
        texts(),
        of(layer7()),
        any::<bool>(),
        of(
            (any::<Option<i32>>(), any::<Option<i32>>()).prop_map(|(event_type, sub_type)| {
                CiliumEventType {
                    event_type,
                    sub_type,
                }
            }),
        ),
    );
    let trace =
        (
            service(),
            service(),
            proto_enum!(TrafficDirection),
            any::<Option<u32>>(),
            proto_enum!(TraceObservationPoint),
            proto_enum!(TraceReason),
            of((text(), any::<Option<u32>>()).prop_map(|(name, line)| FileInfo { name, line })),
            of((any::<Option<u64>>(), any::<Option<u32>>()).prop_map(
                |(trace_id, ip_option_type)| IpTraceId {
                    trace_id,
                    ip_option_type,
                },
            )),
            proto_enum!(DropReason),
            any::<Option<bool>>(),
        );
    let tail = (
        proto_enum!(DebugCapturePoint),
        of((any::<Option<u32>>(), text())
            .prop_map(|(index, name)| NetworkInterface { index, name })),
        any::<Option<u32>>(),
        of(of(text().prop_map(|trace_id| TraceParent { trace_id }))
            .prop_map(|parent| TraceContext { parent })),
        proto_enum!(SocketTranslationPoint),
        any::<Option<u64>>(),
        any::<Option<u64>>(),
        text(),
        extensions(),
    );
    let policy = (
        policies(),
        policies(),
        policies(),
        policies(),
        texts(),
        of((
            any::<Option<u32>>(),
            any::<Option<u32>>(),
            any::<Option<u32>>(),
        )
            .prop_map(
                |(ingress_flow_count, egress_flow_count, unknown_direction_flow_count)| Aggregate {
                    ingress_flow_count,
                    egress_flow_count,
                    unknown_direction_flow_count,
                },
            )),
    );
    (head, ends, trace, tail, policy)
        .prop_map(|(head, ends, trace, tail, policy)| {
            let (time, uuid, emitter, verdict, drop_reason, auth_type, ethernet, ip, l4, tunnel) =
                head;
            let (
                source,
                destination,
                flow_type,
                node_name,
                node_labels,
                source_names,
                destination_names,
                l7,
                reply,
                event_type,
            ) = ends;
            let (
                source_service,
                destination_service,
                traffic_direction,
                policy_match_type,
                trace_observation_point,
                trace_reason,
                file,
                ip_trace_id,
                drop_reason_desc,
                is_reply,
            ) = trace;
            let (
                debug_capture_point,
                interface,
                proxy_port,
                trace_context,
                sock_xlate_point,
                socket_cookie,
                cgroup_id,
                summary,
                extensions,
            ) = tail;
            let (
                egress_allowed_by,
                ingress_allowed_by,
                egress_denied_by,
                ingress_denied_by,
                policy_log,
                aggregate,
            ) = policy;
            Flow {
                time,
                uuid,
                emitter,
                verdict,
                drop_reason,
                auth_type,
                ethernet,
                ip,
                l4,
                tunnel,
                source,
                destination,
                flow_type,
                node_name,
                node_labels,
                source_names,
                destination_names,
                l7,
                reply,
                event_type,
                source_service,
                destination_service,
                traffic_direction,
                policy_match_type,
                trace_observation_point,
                trace_reason,
                file,
                ip_trace_id,
                drop_reason_desc,
                is_reply,
                debug_capture_point,
                interface,
                proxy_port,
                trace_context,
                sock_xlate_point,
                socket_cookie,
                cgroup_id,
                summary,
                extensions,
                egress_allowed_by,
                ingress_allowed_by,
                egress_denied_by,
                ingress_denied_by,
                policy_log,
                aggregate,
            }
        })
        .boxed()
}

fn response() -> BoxedStrategy<GetFlowsResponse> {
    let node_status = (proto_enum!(NodeState), texts(), text()).prop_map(
        |(state_change, node_names, message)| NodeStatusEvent {
            state_change,
            node_names,
            message,
        },
    );
    let lost_events = (
        proto_enum!(LostEventSource),
        any::<Option<u64>>(),
        any::<Option<i32>>(),
        of(time()),
        of(time()),
    )
        .prop_map(|(source, num_events_lost, cpu, first, last)| LostEvent {
            source,
            num_events_lost,
            cpu,
            first,
            last,
        });
    (
        of(flow()),
        of(node_status),
        of(lost_events),
        text(),
        of(time()),
    )
        .prop_map(
            |(flow, node_status, lost_events, node_name, time)| GetFlowsResponse {
                flow,
                node_status,
                lost_events,
                node_name,
                time,
            },
        )
        .boxed()
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

#[test]
fn a_flow_reads_back_from_its_json() {
    check(flow, |flow| {
        let json = serde_json::to_string(&flow).unwrap();
        let back: Flow = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &flow, "{}", json);
        let value = serde_json::to_value(&flow).unwrap();
        prop_assert_eq!(serde_json::from_value::<Flow>(value).unwrap(), flow);
        Ok(())
    });
}

#[test]
fn a_response_reads_back_from_its_json() {
    check(response, |response| {
        let json = serde_json::to_string(&response).unwrap();
        let back: GetFlowsResponse = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &response, "{}", json);
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
