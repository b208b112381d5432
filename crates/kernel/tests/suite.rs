//! The datapath test suite, run against the reference model and the kernel backend alike:
//! each test runs its body on a `ReferenceDatapath` and, where the kernel is available (root,
//! clang), on a `KernelDatapath` with the virtual clock, and both must pass the same
//! assertions. Kernel-only tests (flow events from the ring buffer, counters, attaching) are
//! at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use fqdnpath_cache::{Fqdn, Timestamp};
use fqdnpath_datapath::conntrack::TcpFlags;
use fqdnpath_datapath::frame::{ETH_P_ARP, build_frame};
use fqdnpath_datapath::{
    Datapath, DatapathError, MapSizes, PROTO_TCP, PROTO_UDP, Packet, ReferenceDatapath, Verdict,
};
use fqdnpath_kernel::{Clock, KernelDatapath, kernel_tests_enabled};
use fqdnpath_policy::compile::{Compiler, Delta, Endpoint};
use fqdnpath_policy::identity::Identity;
use fqdnpath_policy::load_str;
use fqdnpath_policy::policymap::{DnsAllow, DropReason, MatchType, PolicyAction, PolicyKey};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const POLICY: &str = r#"
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: dns-client, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: dns-client}}
  egress:
    - toEndpoints:
        - matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system, k8s:k8s-app: kube-dns}
      toPorts:
        - ports: [{port: "53", protocol: ANY}]
          rules: {dns: [{matchPattern: "*.github.com"}, {matchName: github.com}]}
    - toFQDNs: [{matchName: github.com}]
      toPorts: [{ports: [{port: "443", protocol: TCP}]}]
  egressDeny:
    - toCIDR: [203.0.113.0/24]
"#;

fn compiler() -> Compiler {
    let policies: Vec<_> = load_str("p.yaml", POLICY).unwrap().network_policies();
    let labels = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
    let endpoints = vec![
        Endpoint {
            id: 1,
            namespace: "default".into(),
            name: "dns-client".into(),
            labels: labels("app", "dns-client"),
            ips: vec![ip("10.0.1.10"), ip("fd00::10")],
        },
        Endpoint {
            id: 2,
            namespace: "kube-system".into(),
            name: "coredns".into(),
            labels: labels("k8s-app", "kube-dns"),
            ips: vec![ip("10.0.2.53")],
        },
    ];
    Compiler::new(&policies, &endpoints).unwrap()
}

/// Runs `body` against the model and, where possible, the kernel, each programmed from a
/// fresh compiler with maps of `sizes`; `program` is what programming returned.
fn each_datapath(
    test: &str,
    sizes: MapSizes,
    body: impl Fn(&mut Compiler, &mut dyn Datapath, Result<(), DatapathError>),
) {
    let mut compiler = compiler();
    let mut model = ReferenceDatapath::new(sizes);
    let programmed = model.program(&compiler, &|_| true);
    body(&mut compiler, &mut model, programmed);
    if kernel_tests_enabled(test) {
        let mut compiler = self::compiler();
        let mut kernel = KernelDatapath::load(sizes, Clock::Virtual).unwrap();
        let programmed = kernel.program(&compiler, &|_| true);
        body(&mut compiler, &mut kernel, programmed);
    }
}

fn tcp(src: &str, dst: &str, sport: u16, dport: u16) -> Packet {
    Packet {
        src: ip(src),
        dst: ip(dst),
        proto: PROTO_TCP,
        sport,
        dport,
        flags: TcpFlags::default(),
    }
}

fn t(secs: u64) -> Timestamp {
    Timestamp::from_secs(secs)
}

fn learn(compiler: &mut Compiler, dp: &mut dyn Datapath, addr: &str, name: &str) {
    let names = if name.is_empty() {
        BTreeSet::new()
    } else {
        BTreeSet::from([Fqdn::new(name)])
    };
    dp.apply(&compiler.update_ip(ip(addr), names).unwrap())
        .unwrap();
}

#[test]
fn dns_is_redirected_with_its_rules_and_fqdn_traffic_waits_for_the_answer() {
    each_datapath(
        "dns_is_redirected",
        MapSizes::default(),
        |compiler, dp, programmed| {
            programmed.unwrap();
            let dns = Packet {
                proto: PROTO_UDP,
                ..tcp("10.0.1.10", "10.0.2.53", 40000, 53)
            };
            let event = dp.egress(&dns, t(0));
            assert_eq!(event.verdict, Verdict::Redirected);
            assert_eq!(event.match_type, Some(MatchType::L3L4));
            let Some(DnsAllow::Selectors(rules)) = &event.dns else {
                panic!("{event:?}")
            };
            assert_eq!(rules.len(), 2);
            let syn = tcp("10.0.1.10", "140.82.112.3", 41000, 443);
            let event = dp.egress(&syn, t(1));
            assert_eq!(
                (event.verdict, event.drop_reason, event.dst_identity),
                (
                    Verdict::Dropped,
                    Some(DropReason::PolicyDenied),
                    Identity::WORLD
                )
            );
            learn(compiler, dp, "140.82.112.3", "github.com");
            let event = dp.egress(&syn, t(2));
            assert_eq!(event.verdict, Verdict::Forwarded);
            assert!(event.dst_identity.is_local());
            assert_eq!(
                dp.ipcache_entries(),
                compiler
                    .ipcache()
                    .iter()
                    .map(|(p, i)| (*p, *i))
                    .collect::<Vec<_>>()
            );
            // What the maps hold is what the compiler computed.
            let want: Vec<(PolicyKey, PolicyAction)> = compiler
                .policy_map(1)
                .unwrap()
                .iter()
                .map(|(k, a)| (*k, a.clone()))
                .collect();
            assert_eq!(dp.policy_entries(1), want);
        },
    );
}

#[test]
fn a_deny_wins_and_names_its_key() {
    each_datapath("a_deny_wins", MapSizes::default(), |_, dp, programmed| {
        programmed.unwrap();
        let event = dp.egress(&tcp("10.0.1.10", "203.0.113.9", 41000, 443), t(0));
        assert_eq!(
            (event.verdict, event.drop_reason),
            (Verdict::Dropped, Some(DropReason::PolicyDeny))
        );
        assert_eq!(event.policy_key.map(|k| k.proto), Some(0));
    });
}

#[test]
fn replies_pass_and_every_egress_packet_is_judged() {
    each_datapath(
        "replies_pass",
        MapSizes::default(),
        |compiler, dp, programmed| {
            programmed.unwrap();
            learn(compiler, dp, "140.82.112.3", "github.com");
            let out = tcp("10.0.1.10", "140.82.112.3", 41000, 443);
            assert_eq!(dp.egress(&out, t(0)).verdict, Verdict::Forwarded);
            let back = tcp("140.82.112.3", "10.0.1.10", 443, 41000);
            assert!(dp.ingress(&back, t(0)).is_reply);
            assert_eq!(dp.egress(&out, t(10)).verdict, Verdict::Forwarded);
            // The IP loses its identity: the next packet of the connection is dropped.
            learn(compiler, dp, "140.82.112.3", "");
            let event = dp.egress(&out, t(20));
            assert_eq!(
                (event.verdict, event.drop_reason),
                (Verdict::Dropped, Some(DropReason::PolicyDenied))
            );
        },
    );
}

#[test]
fn a_flow_the_peer_opened_is_answered_without_egress_policy() {
    each_datapath("peer_opened", MapSizes::default(), |_, dp, programmed| {
        programmed.unwrap();
        let inbound = tcp("192.0.2.50", "10.0.1.10", 50000, 8080);
        assert!(!dp.ingress(&inbound, t(0)).is_reply);
        let answer = tcp("10.0.1.10", "192.0.2.50", 8080, 50000);
        let event = dp.egress(&answer, t(1));
        assert_eq!((event.verdict, event.is_reply), (Verdict::Forwarded, true));
        let other = tcp("10.0.1.10", "192.0.2.50", 8080, 50001);
        assert_eq!(dp.egress(&other, t(1)).verdict, Verdict::Dropped);
    });
}

#[test]
fn unknown_sources_are_dropped() {
    each_datapath(
        "unknown_sources",
        MapSizes::default(),
        |_, dp, programmed| {
            programmed.unwrap();
            let event = dp.egress(&tcp("10.9.9.9", "10.0.2.53", 1, 53), t(0));
            assert_eq!(event.drop_reason, Some(DropReason::InvalidSourceIp));
            assert_eq!(event.endpoint, None);
        },
    );
}

#[test]
fn ipv6_sources_are_endpoints_too() {
    each_datapath("ipv6_sources", MapSizes::default(), |_, dp, programmed| {
        programmed.unwrap();
        let event = dp.egress(&tcp("fd00::10", "2001:db8::1", 1000, 443), t(0));
        assert_eq!(
            (event.endpoint, event.drop_reason),
            (Some(1), Some(DropReason::PolicyDenied))
        );
    });
}

#[test]
fn conntrack_gc_reports_live_destinations_and_expires_flows() {
    each_datapath(
        "conntrack_gc",
        MapSizes::default(),
        |compiler, dp, programmed| {
            programmed.unwrap();
            learn(compiler, dp, "140.82.112.3", "github.com");
            dp.egress(&tcp("10.0.1.10", "140.82.112.3", 41000, 443), t(0));
            dp.ingress(&tcp("140.82.112.3", "10.0.1.10", 443, 41000), t(0));
            assert_eq!(dp.conntrack_gc(t(60)), [(1, ip("140.82.112.3"))]);
            assert_eq!(dp.conntrack_gc(t(21_600)), [(1, ip("140.82.112.3"))]);
            assert!(
                dp.conntrack_gc(t(21_600) + Duration::from_secs(1))
                    .is_empty()
            );
            let fin = Packet {
                flags: TcpFlags {
                    fin: true,
                    ..TcpFlags::default()
                },
                ..tcp("10.0.1.10", "140.82.112.3", 42000, 443)
            };
            dp.egress(&fin, t(100));
            assert_eq!(dp.conntrack_gc(t(110)).len(), 1);
            assert!(dp.conntrack_gc(t(111)).is_empty());
            let capacity = dp.capacity();
            assert_eq!((capacity.conntrack.used, capacity.conntrack6.used), (0, 0));
        },
    );
}

#[test]
fn a_full_ipcache_is_an_error_and_fails_closed() {
    each_datapath(
        "full_ipcache",
        MapSizes {
            ipcache4: 3,
            ..MapSizes::default()
        },
        |compiler, dp, programmed| {
            // Two pod IPs and the denied CIDR fill the IPv4 ipcache.
            programmed.unwrap();
            let deltas = compiler
                .update_ip(
                    ip("140.82.112.3"),
                    BTreeSet::from([Fqdn::new("github.com")]),
                )
                .unwrap();
            let err = dp.apply(&deltas).unwrap_err();
            assert_eq!(
                err,
                DatapathError::MapFull {
                    map: "ipcache4",
                    max_entries: 3
                }
            );
            assert_eq!(dp.capacity().ipcache4.used, 3);
            // Fail closed: even DNS to kube-dns, which the policy allows, is dropped now,
            // and stays dropped after a change that fits.
            let dns = Packet {
                proto: PROTO_UDP,
                ..tcp("10.0.1.10", "10.0.2.53", 40000, 53)
            };
            let event = dp.egress(&dns, t(0));
            assert_eq!(
                (event.verdict, event.drop_reason),
                (Verdict::Dropped, Some(DropReason::PolicyDenied))
            );
            dp.apply(&[Delta::IpcacheDelete {
                prefix: fqdnpath_policy::compile::Prefix::host(ip("10.0.2.53")),
            }])
            .unwrap();
            assert_eq!(dp.egress(&dns, t(1)).verdict, Verdict::Dropped);
        },
    );
}

#[test]
fn a_full_policy_map_is_an_error_and_fails_closed_for_its_endpoint() {
    each_datapath(
        "full_policy",
        MapSizes {
            policy: 64,
            ..MapSizes::default()
        },
        |_, dp, programmed| {
            programmed.unwrap();
            let used = dp.capacity().policy.used;
            let extra: Vec<Delta> = (0..=64 - used)
                .map(|i| Delta::PolicyUpsert {
                    endpoint: 1,
                    key: PolicyKey::l3(Identity(1000 + u32::try_from(i).unwrap())),
                    action: PolicyAction::Allow,
                })
                .collect();
            assert_eq!(
                dp.apply(&extra),
                Err(DatapathError::MapFull {
                    map: "policy",
                    max_entries: 64
                })
            );
            assert_eq!(dp.capacity().policy.used, 64);
            let dns = Packet {
                proto: PROTO_UDP,
                ..tcp("10.0.1.10", "10.0.2.53", 40000, 53)
            };
            assert_eq!(
                dp.egress(&dns, t(0)).drop_reason,
                Some(DropReason::PolicyDenied)
            );
        },
    );
}

#[test]
fn frames_are_parsed_alike_and_fail_closed() {
    each_datapath("frames", MapSizes::default(), |_, dp, programmed| {
        programmed.unwrap();
        let dns = Packet {
            proto: PROTO_UDP,
            ..tcp("10.0.1.10", "10.0.2.53", 40000, 53)
        };
        let frame = build_frame(&dns, 12);
        let event = dp.egress_frame(&frame, t(0)).unwrap();
        assert_eq!(event.verdict, Verdict::Redirected);
        // Cut inside the UDP ports: CT_TRUNCATED_OR_INVALID_HEADER.
        let event = dp.egress_frame(&frame[..14 + 20 + 3], t(0)).unwrap();
        assert_eq!(
            event.drop_reason,
            Some(DropReason::CtTruncatedOrInvalidHeader)
        );
        // A later IPv4 fragment: no ports, dropped.
        let mut fragment = frame.clone();
        fragment[14 + 6] = 0x00;
        fragment[14 + 7] = 0x10;
        assert_eq!(
            dp.egress_frame(&fragment, t(0)).unwrap().drop_reason,
            Some(DropReason::IpFragmentationNotSupported)
        );
        // IPv4 options are skipped: the ports are found after them.
        let mut options = frame[..34].to_vec();
        options[14] = 0x46;
        options.extend_from_slice(&[1, 1, 1, 0]);
        options.extend_from_slice(&frame[34..]);
        assert_eq!(
            dp.egress_frame(&options, t(0)).unwrap().verdict,
            Verdict::Redirected
        );
        // ARP passes unjudged; other ethertypes are dropped.
        let mut arp = frame.clone();
        arp[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
        assert_eq!(dp.egress_frame(&arp, t(0)), None);
        let mut other = frame.clone();
        other[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
        assert_eq!(
            dp.egress_frame(&other, t(0)).unwrap().drop_reason,
            Some(DropReason::UnsupportedL3Protocol)
        );
        // A malformed IPv4 header: header length under 20 bytes, or the wrong version.
        // (BPF_PROG_TEST_RUN refuses an IP frame shorter than its fixed IP header, so headers
        // cut short are checked on the model alone, in frame.rs's tests.)
        for first in [0x44, 0x55, 0x65] {
            let mut bad = frame.clone();
            bad[14] = first;
            assert_eq!(
                dp.egress_frame(&bad, t(0)).unwrap().drop_reason,
                Some(DropReason::InvalidPacket),
                "first byte {first:#x}"
            );
        }
    });
}

#[test]
fn ipv6_extension_headers_are_walked_up_to_four() {
    each_datapath("ipv6_exthdr", MapSizes::default(), |_, dp, programmed| {
        programmed.unwrap();
        let packet = tcp("fd00::10", "2001:db8::1", 1000, 443);
        let frame = build_frame(&packet, 0);
        // Insert `n` hop-by-hop/destination headers of 8 bytes before TCP.
        let with = |n: usize, last_next: u8| {
            let mut f = frame[..54].to_vec();
            let l4 = &frame[54..];
            f[14 + 6] = if n == 0 { last_next } else { 0 };
            for i in 0..n {
                let next = if i + 1 == n { last_next } else { 60 };
                f.extend_from_slice(&[next, 0, 0, 0, 0, 0, 0, 0]);
            }
            f.extend_from_slice(l4);
            f
        };
        let judged = |dp: &mut dyn Datapath, f: &[u8]| {
            let e = dp.egress_frame(f, t(0)).unwrap();
            (e.drop_reason, e.packet.dport)
        };
        assert_eq!(
            judged(dp, &with(4, PROTO_TCP)),
            (Some(DropReason::PolicyDenied), 443)
        );
        assert_eq!(
            judged(dp, &with(5, PROTO_TCP)),
            (Some(DropReason::InvalidIpv6ExtensionHeader), 0)
        );
        assert_eq!(
            judged(dp, &with(2, 59)),
            (Some(DropReason::InvalidIpv6ExtensionHeader), 0)
        );
    });
}

fn kernel(test: &str) -> Option<(Compiler, KernelDatapath)> {
    if !kernel_tests_enabled(test) {
        return None;
    }
    let compiler = compiler();
    let mut dp = KernelDatapath::load(MapSizes::default(), Clock::Virtual).unwrap();
    dp.program(&compiler, &|_| true).unwrap();
    Some((compiler, dp))
}

#[test]
fn kernel_counters_count_verdicts() {
    let Some((_, mut dp)) = kernel("kernel_counters") else {
        return;
    };
    let before = dp.counters().unwrap();
    let dns = Packet {
        proto: PROTO_UDP,
        ..tcp("10.0.1.10", "10.0.2.53", 40000, 53)
    };
    dp.egress(&dns, t(0));
    dp.egress(&tcp("10.0.1.10", "8.8.8.8", 1, 443), t(0));
    dp.egress(&tcp("10.0.1.10", "8.8.8.8", 2, 443), t(0));
    let after = dp.counters().unwrap();
    assert_eq!(after.redirected - before.redirected, 1);
    assert_eq!(after.dropped - before.dropped, 2);
    assert_eq!(after.events_lost, 0);
}

#[test]
fn kernel_events_carry_the_redirect_mark_and_the_virtual_time() {
    let Some((_, mut dp)) = kernel("kernel_events") else {
        return;
    };
    let dns = Packet {
        proto: PROTO_UDP,
        ..tcp("10.0.1.10", "10.0.2.53", 40000, 53)
    };
    let frame = build_frame(&dns, 0);
    let (dropped, event) = dp.test_run(KernelDatapath::EGRESS, &frame, t(42)).unwrap();
    let event = event.unwrap();
    assert!(!dropped);
    assert_eq!(event.ts_ns, 42_000_000_000);
    assert_eq!(event.verdict, fqdnpath_datapath::abi::VERDICT_REDIRECTED);
    // Nothing else was emitted.
    assert!(dp.events().is_empty());
    // The redirect marks the packet for the proxy, as Cilium's tproxy mark does.
    let mark = dp.egress_mark(&frame, t(43)).unwrap();
    assert_eq!(
        mark,
        fqdnpath_datapath::abi::MARK_MAGIC_TO_PROXY
            | (u32::from(fqdnpath_datapath::abi::DNS_PROXY_PORT) << 16)
    );
    let https = build_frame(&tcp("10.0.1.10", "8.8.8.8", 1, 443), 0);
    assert_eq!(dp.egress_mark(&https, t(43)).unwrap(), 0);
}

#[test]
fn kernel_bench_baseline_finds_the_identities_of_its_hash() {
    let Some((_, mut dp)) = kernel("kernel_bench_baseline") else {
        return;
    };
    let learned = Identity(16_777_300);
    dp.apply(&[Delta::IpcacheUpsert {
        prefix: fqdnpath_policy::compile::Prefix::host(ip("192.0.2.7")),
        identity: learned,
    }])
    .unwrap();
    // The baseline copies the datapath's IPv4 ipcache when it loads.
    let mut bare = fqdnpath_kernel::Baseline::load(&dp).unwrap();
    bare.fill_hash(learned).unwrap();
    let to_learned = build_frame(&tcp("10.0.1.10", "192.0.2.7", 1, 443), 0);
    let to_world = build_frame(&tcp("10.0.1.10", "192.0.2.8", 1, 443), 0);
    assert!(!bare.test_run(&to_learned).unwrap());
    assert!(bare.test_run(&to_world).unwrap());
    bare.time(&to_learned, 16).unwrap();
}
