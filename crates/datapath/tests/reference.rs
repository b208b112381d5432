//! The reference datapath driven by the compiler: verdicts, replies, conntrack, fail-closed.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use fqdnpath_datapath::conntrack::TcpFlags;
use fqdnpath_datapath::{
    Datapath, DatapathError, MapSizes, PROTO_TCP, PROTO_UDP, Packet, ReferenceDatapath, Verdict,
};
use fqdnpath_names::{EndpointId, Fqdn, Timestamp};
use fqdnpath_policy::compile::{Compiler, Delta, Endpoint};
use fqdnpath_policy::identity::Identity;
use fqdnpath_policy::load_str;
use fqdnpath_policy::policymap::{DnsAllow, DropReason, MatchType};

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
"#;

fn setup(sizes: MapSizes) -> (Compiler, ReferenceDatapath) {
    let policies: Vec<_> = load_str("p.yaml", POLICY).unwrap().network_policies();
    let labels = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
    let endpoints = vec![
        Endpoint {
            id: EndpointId(1),
            namespace: "default".into(),
            name: "dns-client".into(),
            labels: labels("app", "dns-client"),
            ips: vec![ip("10.0.1.10")],
        },
        Endpoint {
            id: EndpointId(2),
            namespace: "kube-system".into(),
            name: "coredns".into(),
            labels: labels("k8s-app", "kube-dns"),
            ips: vec![ip("10.0.2.53")],
        },
    ];
    let compiler = Compiler::new(&policies, &endpoints).unwrap();
    let mut datapath = ReferenceDatapath::new(sizes);
    // Small map sizes make this fail on purpose in the full-map test: it then fails closed.
    let _ = datapath.program(&compiler, &|_| true);
    (compiler, datapath)
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

#[test]
fn dns_is_redirected_with_its_rules_and_fqdn_traffic_waits_for_the_answer() {
    let (mut compiler, mut dp) = setup(MapSizes::default());
    let dns = Packet {
        proto: PROTO_UDP,
        ..tcp("10.0.1.10", "10.0.2.53", 40000, 53)
    };
    let event = dp.egress(&dns, t(0));
    assert_eq!(event.verdict, Verdict::Redirected);
    assert_eq!(event.match_type, Some(MatchType::L3L4));
    let Some(DnsAllow::Selectors(rules)) = event.dns else {
        panic!("{event:?}")
    };
    assert_eq!(rules.len(), 2);
    // Before the answer is learned, github.com's IP is world: dropped.
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
    // The answer is learned and programmed.
    let deltas = compiler
        .update_ip(
            ip("140.82.112.3"),
            BTreeSet::from([Fqdn::new("github.com")]),
        )
        .unwrap();
    dp.apply(&deltas).unwrap();
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
}

#[test]
fn replies_pass_and_every_egress_packet_is_judged() {
    let (mut compiler, mut dp) = setup(MapSizes::default());
    dp.apply(
        &compiler
            .update_ip(
                ip("140.82.112.3"),
                BTreeSet::from([Fqdn::new("github.com")]),
            )
            .unwrap(),
    )
    .unwrap();
    let out = tcp("10.0.1.10", "140.82.112.3", 41000, 443);
    assert_eq!(dp.egress(&out, t(0)).verdict, Verdict::Forwarded);
    let back = tcp("140.82.112.3", "10.0.1.10", 443, 41000);
    let event = dp.ingress(&back, t(0));
    assert!(event.is_reply);
    assert_eq!(dp.egress(&out, t(10)).verdict, Verdict::Forwarded);
    // The IP loses its identity: the next packet of the established connection is dropped.
    dp.apply(
        &compiler
            .update_ip(ip("140.82.112.3"), BTreeSet::new())
            .unwrap(),
    )
    .unwrap();
    let event = dp.egress(&out, t(20));
    assert_eq!(
        (event.verdict, event.drop_reason),
        (Verdict::Dropped, Some(DropReason::PolicyDenied))
    );
}

#[test]
fn a_flow_the_peer_opened_is_answered_without_egress_policy() {
    let (_, mut dp) = setup(MapSizes::default());
    let inbound = tcp("192.0.2.50", "10.0.1.10", 50000, 8080);
    assert!(!dp.ingress(&inbound, t(0)).is_reply);
    let answer = tcp("10.0.1.10", "192.0.2.50", 8080, 50000);
    let event = dp.egress(&answer, t(1));
    assert_eq!((event.verdict, event.is_reply), (Verdict::Forwarded, true));
    // Not a reply: judged, and dropped.
    let other = tcp("10.0.1.10", "192.0.2.50", 8080, 50001);
    assert_eq!(dp.egress(&other, t(1)).verdict, Verdict::Dropped);
}

#[test]
fn unknown_sources_are_dropped() {
    let (_, mut dp) = setup(MapSizes::default());
    let event = dp.egress(&tcp("10.9.9.9", "10.0.2.53", 1, 53), t(0));
    assert_eq!(event.drop_reason, Some(DropReason::InvalidSourceIp));
}

#[test]
fn conntrack_gc_reports_live_destinations_and_expires_flows() {
    let (mut compiler, mut dp) = setup(MapSizes::default());
    dp.apply(
        &compiler
            .update_ip(
                ip("140.82.112.3"),
                BTreeSet::from([Fqdn::new("github.com")]),
            )
            .unwrap(),
    )
    .unwrap();
    dp.egress(&tcp("10.0.1.10", "140.82.112.3", 41000, 443), t(0));
    dp.ingress(&tcp("140.82.112.3", "10.0.1.10", 443, 41000), t(0));
    assert_eq!(
        dp.conntrack_gc(t(60)),
        [(EndpointId(1), ip("140.82.112.3"))]
    );
    // Established TCP lives 6 h without packets; then it is gone.
    assert_eq!(
        dp.conntrack_gc(t(21_600)),
        [(EndpointId(1), ip("140.82.112.3"))]
    );
    assert!(
        dp.conntrack_gc(t(21_600) + Duration::from_secs(1))
            .is_empty()
    );
    // A FIN shortens it to 10 s.
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
}

#[test]
fn a_full_map_is_an_error_and_fails_closed() {
    let (mut compiler, _) = setup(MapSizes::default());
    let (_, mut dp) = setup(MapSizes {
        ipcache4: 2,
        ..MapSizes::default()
    });
    // Two pod IPs fill the ipcache: the learned IP does not fit.
    let deltas = compiler
        .update_ip(
            ip("140.82.112.3"),
            BTreeSet::from([Fqdn::new("github.com")]),
        )
        .unwrap();
    let err = dp.apply(&deltas).unwrap_err();
    assert!(
        matches!(
            err,
            DatapathError::MapFull {
                map: "ipcache4",
                max_entries: 2
            }
        ),
        "{err:?}"
    );
    assert_eq!(dp.capacity().ipcache4.used, 2);
    // Fail closed: even DNS to kube-dns, which the policy allows, is dropped now.
    let dns = Packet {
        proto: PROTO_UDP,
        ..tcp("10.0.1.10", "10.0.2.53", 40000, 53)
    };
    assert_eq!(dp.egress(&dns, t(0)).verdict, Verdict::Dropped);
    // A full policy map likewise (here the initial programming already overflows it).
    let (_, mut dp) = setup(MapSizes {
        policy: 1,
        ..MapSizes::default()
    });
    let extra = Delta::PolicyUpsert {
        endpoint: EndpointId(1),
        key: fqdnpath_policy::policymap::PolicyKey::l3(Identity(999)),
        action: fqdnpath_policy::policymap::PolicyAction::Allow,
    };
    assert!(matches!(
        dp.apply(&[extra]),
        Err(DatapathError::MapFull { map: "policy", .. })
    ));
    assert_eq!(dp.egress(&dns, t(0)).verdict, Verdict::Dropped);
}
