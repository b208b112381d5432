//! Service translation and Local Redirect Policy, before policy (SEMANTICS.md section 6).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use fqdnpath_datapath::service::{LocalRedirect, Pod, Service, ServicePort, ServiceTable, Via};
use fqdnpath_datapath::{PROTO_TCP, PROTO_UDP};
use fqdnpath_policy::compile::{Compiler, Endpoint, EndpointId};
use fqdnpath_policy::labels::Labels;
use fqdnpath_policy::policymap::{DropReason, PolicyVerdict};
use fqdnpath_policy::{Manifest, load_file};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn manifests(file: &str) -> Vec<Manifest> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/manifests")
        .join(file);
    load_file(&path)
        .unwrap()
        .manifests
        .into_iter()
        .map(|m| m.value)
        .collect()
}

/// (namespace, name, labels, ip, node, endpoint id)
const PODS: &[(&str, &str, &str, &str, &str, u16)] = &[
    (
        "default",
        "dns-client",
        "app=dns-client",
        "10.0.1.10",
        "node-1",
        1,
    ),
    (
        "kube-system",
        "coredns-0",
        "k8s-app=kube-dns",
        "10.0.2.53",
        "node-2",
        2,
    ),
    (
        "kube-system",
        "node-local-dns-node-1",
        "k8s-app=node-local-dns",
        "10.0.1.53",
        "node-1",
        3,
    ),
    (
        "kube-system",
        "node-local-dns-node-2",
        "k8s-app=node-local-dns",
        "10.0.2.54",
        "node-2",
        4,
    ),
];

fn pod_labels(text: &str) -> BTreeMap<String, String> {
    let (k, v) = text.split_once('=').unwrap();
    BTreeMap::from([(k.to_owned(), v.to_owned())])
}

fn kube_dns() -> Service {
    Service {
        namespace: "kube-system".into(),
        name: "kube-dns".into(),
        cluster_ip: ip("10.96.0.10"),
        ports: vec![
            ServicePort {
                name: Some("dns".into()),
                port: 53,
                proto: PROTO_UDP,
                target_port: 53,
            },
            ServicePort {
                name: Some("dns-tcp".into()),
                port: 53,
                proto: PROTO_TCP,
                target_port: 53,
            },
        ],
        backends: vec![ip("10.0.2.53")],
    }
}

fn table(with_lrp: bool, pods: &[(&str, &str, &str, &str, &str, u16)]) -> ServiceTable {
    let pods: Vec<Pod> = pods
        .iter()
        .map(|(ns, _, l, addr, node, _)| Pod {
            ip: ip(addr),
            node: (*node).into(),
            namespace: (*ns).into(),
            labels: Labels::pod(ns, &pod_labels(l)),
        })
        .collect();
    let redirects = if with_lrp {
        manifests("nodelocaldns-lrp.yaml")
            .iter()
            .filter_map(|m| match m {
                Manifest::LocalRedirectPolicy(lrp) => Some(LocalRedirect::new(lrp, &pods)),
                _ => None,
            })
            .collect()
    } else {
        Vec::new()
    };
    ServiceTable::new(vec![kube_dns()], redirects)
}

fn compiler(policy: &str) -> Compiler {
    let policies: Vec<_> = manifests(policy)
        .into_iter()
        .filter_map(Manifest::into_network_policy)
        .collect();
    let endpoints: Vec<Endpoint> = PODS
        .iter()
        .map(|(ns, name, l, addr, _, id)| Endpoint {
            id: EndpointId(*id),
            namespace: (*ns).into(),
            name: (*name).into(),
            labels: pod_labels(l),
            ips: vec![ip(addr)],
        })
        .collect();
    Compiler::new(&policies, &endpoints).unwrap()
}

/// DNS from the client to the kube-dns `ClusterIP`: translated, then judged.
fn dns_verdict(services: &ServiceTable, policy: &str, proto: u8) -> (IpAddr, PolicyVerdict) {
    let t = services
        .translate(ip("10.0.1.10"), "node-1", ip("10.96.0.10"), proto, 53, 7)
        .unwrap();
    let c = compiler(policy);
    let verdict = c
        .policy_map(EndpointId(1))
        .unwrap()
        .lookup(c.identity_of(t.ip), proto, t.port);
    (t.ip, verdict)
}

#[test]
fn lrp_translation_happens_before_policy() {
    // Without the LRP, DNS reaches CoreDNS and the broken policy is fine.
    let (to, verdict) = dns_verdict(&table(false, PODS), "dns-client-broken.yaml", PROTO_UDP);
    assert_eq!(to, ip("10.0.2.53"));
    assert!(matches!(verdict, PolicyVerdict::Redirected { .. }));
    // With it, the destination is node-1's node-local-dns, which the policy does not allow.
    let (to, verdict) = dns_verdict(&table(true, PODS), "dns-client-broken.yaml", PROTO_UDP);
    assert_eq!(to, ip("10.0.1.53"));
    assert_eq!(
        verdict,
        PolicyVerdict::Dropped {
            reason: DropReason::PolicyDenied,
            key: None
        }
    );
    // The fix allows both selectors: UDP and TCP both go through the DNS proxy.
    for proto in [PROTO_UDP, PROTO_TCP] {
        let (to, verdict) = dns_verdict(&table(true, PODS), "dns-client-fixed.yaml", proto);
        assert_eq!(to, ip("10.0.1.53"));
        assert!(
            matches!(verdict, PolicyVerdict::Redirected { .. }),
            "{proto}"
        );
    }
}

#[test]
fn lrp_pairs_ports_by_name_and_stays_on_the_clients_node() {
    let services = table(true, PODS);
    let t = services
        .translate(
            ip("10.0.1.10"),
            "node-1",
            ip("10.96.0.10"),
            PROTO_TCP,
            53,
            1,
        )
        .unwrap();
    assert_eq!((t.ip, t.port), (ip("10.0.1.53"), 53));
    assert_eq!(
        t.via,
        Via::LocalRedirect {
            policy: "kube-system/nodelocaldns".into()
        }
    );
    let t = services
        .translate(
            ip("10.0.2.99"),
            "node-2",
            ip("10.96.0.10"),
            PROTO_UDP,
            53,
            1,
        )
        .unwrap();
    assert_eq!(t.ip, ip("10.0.2.54"));
    // Not a frontend: untouched.
    assert!(
        services
            .translate(
                ip("10.0.1.10"),
                "node-1",
                ip("10.96.0.11"),
                PROTO_UDP,
                53,
                1
            )
            .is_none()
    );
    assert!(
        services
            .translate(
                ip("10.0.1.10"),
                "node-1",
                ip("10.96.0.10"),
                PROTO_UDP,
                5353,
                1
            )
            .is_none()
    );
}

#[test]
fn without_a_local_backend_the_service_keeps_its_backends() {
    let no_local: Vec<_> = PODS
        .iter()
        .filter(|p| p.4 != "node-1" || !p.1.starts_with("node-local"))
        .copied()
        .collect();
    let t = table(true, &no_local)
        .translate(
            ip("10.0.1.10"),
            "node-1",
            ip("10.96.0.10"),
            PROTO_UDP,
            53,
            3,
        )
        .unwrap();
    assert_eq!(t.ip, ip("10.0.2.53"));
    assert_eq!(
        t.via,
        Via::Service {
            service: "kube-system/kube-dns".into()
        }
    );
}
