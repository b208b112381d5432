//! The datapath conformance suite: the behaviour every [`Datapath`] backend must show, written
//! once and run against each (feature `conformance`).
//!
//! The reference model runs it in this crate's tests (`cargo test -p fqdnpath-datapath`), the
//! kernel backend in `fqdnpath-kernel`'s (as root, with clang). A backend's test file expands
//! [`conformance_suite!`](crate::conformance_suite) with a function that, given a case's name,
//! returns a [`Factory`] of fresh datapaths (or `None` to skip the case, with a line saying
//! why): one `#[test]` per case, named after it.
//!
//! Each case programs a fresh datapath from one small policy (DNS to kube-dns through the
//! proxy, `toFQDNs: github.com` on TCP 443, a denied CIDR) and two endpoints, then asserts on
//! verdicts, events, maps and capacity. Differences between backends that are known and
//! documented are not here: they are tests of their own beside the backend that differs.
#![expect(
    clippy::missing_panics_doc,
    reason = "a test suite: a panic is the case failing"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use fqdnpath_names::{EndpointId, Fqdn, Timestamp};
use fqdnpath_policy::compile::{Compiler, Delta, Endpoint};
use fqdnpath_policy::identity::Identity;
use fqdnpath_policy::load_str;
use fqdnpath_policy::policymap::{DnsAllow, DropReason, MatchType, PolicyAction, PolicyKey};

use crate::conntrack::TcpFlags;
use crate::frame::{ETH_P_ARP, build_frame};
use crate::{
    Capacity, Datapath, DatapathError, FlowEvent, MapSizes, PROTO_TCP, PROTO_UDP, Packet, Verdict,
};

/// Makes a fresh, empty datapath with maps of the given sizes.
pub type Factory<'a> = dyn FnMut(MapSizes) -> Box<dyn Datapath> + 'a;

/// The names of every case, in the order the suite runs them.
pub const CASES: &[&str] = &[
    "dns_is_redirected_with_its_rules_and_fqdn_traffic_waits_for_the_answer",
    "a_deny_wins_and_names_its_key",
    "replies_pass_and_every_egress_packet_is_judged",
    "a_flow_the_peer_opened_is_answered_without_egress_policy",
    "unknown_sources_are_dropped",
    "ipv6_sources_are_endpoints_too",
    "conntrack_gc_reports_live_destinations_and_expires_flows",
    "a_full_ipcache_is_an_error_and_fails_closed",
    "a_full_policy_map_is_an_error_and_fails_closed_for_its_endpoint",
    "frames_are_parsed_alike_and_fail_closed",
    "ipv6_extension_headers_are_walked_up_to_four",
];

/// Expands to one `#[test]` per case of the suite. `$factory` is an expression of type
/// `fn(&str) -> Option<Box<Factory<'static>>>`: given the case's name, the datapaths to run it
/// on, or `None` to skip it (the backend says why, on one line).
#[macro_export]
macro_rules! conformance_suite {
    ($factory:expr) => {
        $crate::conformance_suite!(@cases $factory; dns_is_redirected_with_its_rules_and_fqdn_traffic_waits_for_the_answer, a_deny_wins_and_names_its_key, replies_pass_and_every_egress_packet_is_judged, a_flow_the_peer_opened_is_answered_without_egress_policy, unknown_sources_are_dropped, ipv6_sources_are_endpoints_too, conntrack_gc_reports_live_destinations_and_expires_flows, a_full_ipcache_is_an_error_and_fails_closed, a_full_policy_map_is_an_error_and_fails_closed_for_its_endpoint, frames_are_parsed_alike_and_fail_closed, ipv6_extension_headers_are_walked_up_to_four);
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let factory: fn(&str) -> Option<Box<$crate::conformance::Factory<'static>>> =
                    $factory;
                if let Some(mut make) = factory(stringify!($case)) {
                    $crate::conformance::$case(&mut *make);
                }
            }
        )*
    };
}

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

/// The suite's compiler: its policy and two endpoints, `default/dns-client` (ID 1, `10.0.1.10`
/// and `fd00::10`) and `kube-system/coredns` (ID 2, `10.0.2.53`).
pub fn compiler() -> Compiler {
    let policies: Vec<_> = load_str("p.yaml", POLICY).unwrap().network_policies();
    let labels = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
    let endpoints = vec![
        Endpoint {
            id: EndpointId(1),
            namespace: "default".into(),
            name: "dns-client".into(),
            labels: labels("app", "dns-client"),
            ips: vec![ip("10.0.1.10"), ip("fd00::10")],
        },
        Endpoint {
            id: EndpointId(2),
            namespace: "kube-system".into(),
            name: "coredns".into(),
            labels: labels("k8s-app", "kube-dns"),
            ips: vec![ip("10.0.2.53")],
        },
    ];
    Compiler::new(&policies, &endpoints).unwrap()
}

/// Runs `body` on a fresh datapath with maps of `sizes`, programmed (successfully) from a
/// fresh compiler.
fn check(
    make: &mut Factory<'_>,
    sizes: MapSizes,
    body: impl FnOnce(&mut Compiler, &mut dyn Datapath),
) {
    let mut compiler = compiler();
    let mut dp = make(sizes);
    dp.program(&compiler, &|_| true).unwrap();
    body(&mut compiler, &mut *dp);
}

/// A TCP packet without flags, from `src:sport` to `dst:dport` (addresses as text).
pub fn tcp(src: &str, dst: &str, sport: u16, dport: u16) -> Packet {
    Packet {
        src: ip(src),
        dst: ip(dst),
        proto: PROTO_TCP,
        sport,
        dport,
        flags: TcpFlags::default(),
    }
}

/// `secs` seconds after the epoch.
pub fn t(secs: u64) -> Timestamp {
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

/// A DNS query of `default/dns-client` to kube-dns (UDP, `10.0.1.10:40000` to `10.0.2.53:53`).
fn dns_query() -> Packet {
    Packet {
        proto: PROTO_UDP,
        ..tcp("10.0.1.10", "10.0.2.53", 40000, 53)
    }
}

/// Asserts that `event` is a drop for `reason`.
fn assert_dropped(event: &FlowEvent, reason: DropReason) {
    assert_eq!(
        (event.verdict, event.drop_reason),
        (Verdict::Dropped, Some(reason))
    );
}

/// Asserts that applying `deltas` fails on the full map `map` of `max_entries`, which then
/// holds that many entries (`used` reads them from the capacity).
fn assert_overfills(
    dp: &mut dyn Datapath,
    deltas: &[Delta],
    map: &'static str,
    max_entries: usize,
    used: fn(&Capacity) -> usize,
) {
    let err = dp.apply(deltas).unwrap_err();
    assert_eq!(err, DatapathError::MapFull { map, max_entries }, "{err:?}");
    assert_eq!(used(&dp.capacity()), max_entries);
}

/// Case: DNS is redirected with its rules and FQDN traffic waits for the answer.
pub fn dns_is_redirected_with_its_rules_and_fqdn_traffic_waits_for_the_answer(
    make: &mut Factory<'_>,
) {
    check(make, MapSizes::default(), |compiler, dp| {
        let dns = dns_query();
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
            .policy_map(EndpointId(1))
            .unwrap()
            .iter()
            .map(|(k, a)| (*k, a.clone()))
            .collect();
        assert_eq!(dp.policy_entries(EndpointId(1)), want);
    });
}

/// Case: A deny wins and names its key.
pub fn a_deny_wins_and_names_its_key(make: &mut Factory<'_>) {
    check(make, MapSizes::default(), |_, dp| {
        let event = dp.egress(&tcp("10.0.1.10", "203.0.113.9", 41000, 443), t(0));
        assert_dropped(&event, DropReason::PolicyDeny);
        assert_eq!(event.policy_key.map(|k| k.proto), Some(0));
    });
}

/// Case: Replies pass and every egress packet is judged.
pub fn replies_pass_and_every_egress_packet_is_judged(make: &mut Factory<'_>) {
    check(make, MapSizes::default(), |compiler, dp| {
        learn(compiler, dp, "140.82.112.3", "github.com");
        let out = tcp("10.0.1.10", "140.82.112.3", 41000, 443);
        assert_eq!(dp.egress(&out, t(0)).verdict, Verdict::Forwarded);
        let back = tcp("140.82.112.3", "10.0.1.10", 443, 41000);
        assert!(dp.ingress(&back, t(0)).is_reply);
        assert_eq!(dp.egress(&out, t(10)).verdict, Verdict::Forwarded);
        // The IP loses its identity: the next packet of the connection is dropped.
        learn(compiler, dp, "140.82.112.3", "");
        let event = dp.egress(&out, t(20));
        assert_dropped(&event, DropReason::PolicyDenied);
    });
}

/// Case: A flow the peer opened is answered without egress policy.
pub fn a_flow_the_peer_opened_is_answered_without_egress_policy(make: &mut Factory<'_>) {
    check(make, MapSizes::default(), |_, dp| {
        let inbound = tcp("192.0.2.50", "10.0.1.10", 50000, 8080);
        assert!(!dp.ingress(&inbound, t(0)).is_reply);
        let answer = tcp("10.0.1.10", "192.0.2.50", 8080, 50000);
        let event = dp.egress(&answer, t(1));
        assert_eq!((event.verdict, event.is_reply), (Verdict::Forwarded, true));
        let other = tcp("10.0.1.10", "192.0.2.50", 8080, 50001);
        assert_eq!(dp.egress(&other, t(1)).verdict, Verdict::Dropped);
    });
}

/// Case: Unknown sources are dropped.
pub fn unknown_sources_are_dropped(make: &mut Factory<'_>) {
    check(make, MapSizes::default(), |_, dp| {
        let event = dp.egress(&tcp("10.9.9.9", "10.0.2.53", 1, 53), t(0));
        assert_eq!(event.drop_reason, Some(DropReason::InvalidSourceIp));
        assert_eq!(event.endpoint, None);
    });
}

/// Case: IPv6 sources are endpoints too.
pub fn ipv6_sources_are_endpoints_too(make: &mut Factory<'_>) {
    check(make, MapSizes::default(), |_, dp| {
        let event = dp.egress(&tcp("fd00::10", "2001:db8::1", 1000, 443), t(0));
        assert_eq!(
            (event.endpoint, event.drop_reason),
            (Some(EndpointId(1)), Some(DropReason::PolicyDenied))
        );
    });
}

/// Case: Conntrack gc reports live destinations and expires flows.
pub fn conntrack_gc_reports_live_destinations_and_expires_flows(make: &mut Factory<'_>) {
    check(make, MapSizes::default(), |compiler, dp| {
        learn(compiler, dp, "140.82.112.3", "github.com");
        dp.egress(&tcp("10.0.1.10", "140.82.112.3", 41000, 443), t(0));
        dp.ingress(&tcp("140.82.112.3", "10.0.1.10", 443, 41000), t(0));
        assert_eq!(
            dp.conntrack_gc(t(60)),
            [(EndpointId(1), ip("140.82.112.3"))]
        );
        assert_eq!(
            dp.conntrack_gc(t(21_600)),
            [(EndpointId(1), ip("140.82.112.3"))]
        );
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
    });
}

/// Case: A full ipcache is an error and fails closed.
pub fn a_full_ipcache_is_an_error_and_fails_closed(make: &mut Factory<'_>) {
    check(
        make,
        MapSizes {
            ipcache4: 3,
            ..MapSizes::default()
        },
        |compiler, dp| {
            // Two pod IPs and the denied CIDR fill the IPv4 ipcache.
            let deltas = compiler
                .update_ip(
                    ip("140.82.112.3"),
                    BTreeSet::from([Fqdn::new("github.com")]),
                )
                .unwrap();
            assert_overfills(dp, &deltas, "ipcache4", 3, |c| c.ipcache4.used);
            // Fail closed: even DNS to kube-dns, which the policy allows, is dropped now,
            // and stays dropped after a change that fits.
            let dns = dns_query();
            let event = dp.egress(&dns, t(0));
            assert_dropped(&event, DropReason::PolicyDenied);
            dp.apply(&[Delta::IpcacheDelete {
                prefix: fqdnpath_policy::compile::Prefix::host(ip("10.0.2.53")),
            }])
            .unwrap();
            assert_eq!(dp.egress(&dns, t(1)).verdict, Verdict::Dropped);
        },
    );
}

/// Case: A full policy map is an error and fails closed for its endpoint.
pub fn a_full_policy_map_is_an_error_and_fails_closed_for_its_endpoint(make: &mut Factory<'_>) {
    check(
        make,
        MapSizes {
            policy: 64,
            ..MapSizes::default()
        },
        |_, dp| {
            let used = dp.capacity().policy.used;
            let extra: Vec<Delta> = (0..=64 - used)
                .map(|i| Delta::PolicyUpsert {
                    endpoint: EndpointId(1),
                    key: PolicyKey::l3(Identity(1000 + u32::try_from(i).unwrap())),
                    action: PolicyAction::Allow,
                })
                .collect();
            assert_overfills(dp, &extra, "policy", 64, |c| c.policy.used);
            let dns = dns_query();
            assert_eq!(
                dp.egress(&dns, t(0)).drop_reason,
                Some(DropReason::PolicyDenied)
            );
        },
    );
}

/// Case: Frames are parsed alike and fail closed.
pub fn frames_are_parsed_alike_and_fail_closed(make: &mut Factory<'_>) {
    check(make, MapSizes::default(), |_, dp| {
        let dns = dns_query();
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

/// Case: IPv6 extension headers are walked up to four.
pub fn ipv6_extension_headers_are_walked_up_to_four(make: &mut Factory<'_>) {
    check(make, MapSizes::default(), |_, dp| {
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
