//! Compilation into maps and policy-map lookups: SEMANTICS.md section 5 and the article's case.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;

use fqdnpath_names::Fqdn;
use fqdnpath_policy::compile::{Compiler, Delta, Endpoint, EndpointId, Prefix};
use fqdnpath_policy::identity::Identity;
use fqdnpath_policy::manifest::NetworkPolicy;
use fqdnpath_policy::policymap::{
    DnsAllow, DropReason, MatchType, PROTO_TCP, PROTO_UDP, PolicyVerdict, port_range_prefixes,
};
use fqdnpath_policy::{Manifest, load_file, load_str};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn endpoint(id: u16, ns: &str, name: &str, labels: &[(&str, &str)], addr: &str) -> Endpoint {
    Endpoint {
        id: EndpointId(id),
        namespace: ns.into(),
        name: name.into(),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect::<BTreeMap<_, _>>(),
        ips: vec![ip(addr)],
    }
}

/// The article's cluster: the client, `CoreDNS` (kube-dns) and `node-local-dns`.
fn cluster() -> Vec<Endpoint> {
    vec![
        endpoint(
            1,
            "default",
            "dns-client",
            &[("app", "dns-client")],
            "10.0.1.10",
        ),
        endpoint(
            2,
            "kube-system",
            "coredns-0",
            &[("k8s-app", "kube-dns")],
            "10.0.2.53",
        ),
        endpoint(
            3,
            "kube-system",
            "node-local-dns-node-1",
            &[("k8s-app", "node-local-dns")],
            "10.0.1.53",
        ),
        endpoint(4, "default", "other", &[("app", "other")], "10.0.1.11"),
    ]
}

fn policies(file: &str) -> Vec<NetworkPolicy> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/manifests")
        .join(file);
    policies_of(
        load_file(&path)
            .unwrap()
            .manifests
            .into_iter()
            .map(|m| m.value),
    )
}

fn policies_of(manifests: impl IntoIterator<Item = Manifest>) -> Vec<NetworkPolicy> {
    manifests
        .into_iter()
        .filter_map(Manifest::into_network_policy)
        .collect()
}

fn inline(yaml: &str) -> Vec<NetworkPolicy> {
    policies_of(
        load_str("inline.yaml", yaml)
            .unwrap()
            .manifests
            .into_iter()
            .map(|m| m.value),
    )
}

/// Judges a packet from endpoint `from` to `to`.
fn judge(c: &Compiler, from: u16, to: &str, proto: u8, port: u16) -> PolicyVerdict {
    c.policy_map(EndpointId(from))
        .unwrap()
        .lookup(c.identity_of(ip(to)), proto, port)
}

fn names(list: &[&str]) -> BTreeSet<Fqdn> {
    list.iter().map(|n| Fqdn::new(n)).collect()
}

#[test]
fn lrp_redirect_denies_dns_when_only_kube_dns_allowed() {
    let c = Compiler::new(&policies("dns-client-broken.yaml"), &cluster()).unwrap();
    // To CoreDNS itself, DNS goes through the proxy with every name allowed (`*`).
    assert!(matches!(
        judge(&c, 1, "10.0.2.53", PROTO_UDP, 53),
        PolicyVerdict::Redirected {
            dns: DnsAllow::All,
            match_type: MatchType::L3L4,
            ..
        }
    ));
    // Redirected to node-local-dns by the LRP, the same packet is dropped.
    assert_eq!(
        judge(&c, 1, "10.0.1.53", PROTO_UDP, 53),
        PolicyVerdict::Dropped {
            reason: DropReason::PolicyDenied,
            key: None
        }
    );
    let fixed = Compiler::new(&policies("dns-client-fixed.yaml"), &cluster()).unwrap();
    assert!(matches!(
        judge(&fixed, 1, "10.0.1.53", PROTO_UDP, 53),
        PolicyVerdict::Redirected { .. }
    ));
    assert!(matches!(
        judge(&fixed, 1, "10.0.1.53", PROTO_TCP, 53),
        PolicyVerdict::Redirected { .. }
    ));
}

#[test]
fn fqdn_ips_are_reachable_only_once_learned_and_share_an_identity() {
    let mut c = Compiler::new(&policies("dns-client-fixed.yaml"), &cluster()).unwrap();
    assert_eq!(c.identity_of(ip("140.82.112.3")), Identity::WORLD);
    assert!(matches!(
        judge(&c, 1, "140.82.112.3", PROTO_TCP, 443),
        PolicyVerdict::Dropped {
            reason: DropReason::PolicyDenied,
            ..
        }
    ));
    let deltas = c
        .update_ip(ip("140.82.112.3"), names(&["github.com"]))
        .unwrap();
    let identity = c.identity_of(ip("140.82.112.3"));
    assert!(identity.is_local());
    assert!(deltas.contains(&Delta::IpcacheUpsert {
        prefix: Prefix::host(ip("140.82.112.3")),
        identity
    }));
    assert!(deltas.iter().any(
        |d| matches!(d, Delta::PolicyUpsert { endpoint: EndpointId(1), key, .. } if key.identity == identity)
    ));
    assert!(matches!(
        judge(&c, 1, "140.82.112.3", PROTO_TCP, 443),
        PolicyVerdict::Allowed {
            match_type: MatchType::L3L4,
            ..
        }
    ));
    assert!(matches!(
        judge(&c, 1, "140.82.112.3", PROTO_TCP, 80),
        PolicyVerdict::Dropped { .. }
    ));
    // Another endpoint in the namespace has no such rule.
    assert!(
        matches!(
            judge(&c, 4, "140.82.112.3", PROTO_TCP, 443),
            PolicyVerdict::Allowed { .. }
        ),
        "no policy selects it: allow all"
    );
    // A second IP of the same name shares the identity; only its ipcache entry is new.
    let deltas = c
        .update_ip(ip("140.82.112.4"), names(&["github.com"]))
        .unwrap();
    assert_eq!(
        deltas,
        [Delta::IpcacheUpsert {
            prefix: Prefix::host(ip("140.82.112.4")),
            identity
        }]
    );
    // A name no selector matches is not inserted.
    assert!(
        c.update_ip(ip("192.0.2.1"), names(&["example.org"]))
            .unwrap()
            .is_empty()
    );
    assert_eq!(c.identity_of(ip("192.0.2.1")), Identity::WORLD);
    // The IP leaves the global view: entry gone, identity kept while the other IP holds it.
    let deltas = c.update_ip(ip("140.82.112.3"), BTreeSet::new()).unwrap();
    assert_eq!(
        deltas,
        [Delta::IpcacheDelete {
            prefix: Prefix::host(ip("140.82.112.3"))
        }]
    );
    let deltas = c.update_ip(ip("140.82.112.4"), BTreeSet::new()).unwrap();
    assert!(deltas.iter().any(
        |d| matches!(d, Delta::PolicyDelete { endpoint: EndpointId(1), key } if key.identity == identity)
    ));
    assert!(matches!(
        judge(&c, 1, "140.82.112.4", PROTO_TCP, 443),
        PolicyVerdict::Dropped { .. }
    ));
}

const HEAD: &str = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: p, namespace: default}\nspec:\n  endpointSelector: {matchLabels: {app: dns-client}}\n";

#[test]
fn deny_wins_over_allow() {
    let c = Compiler::new(
        &inline(&format!("{HEAD}  egress: [{{toEntities: [world]}}]\n  egressDeny:\n    - toCIDR: [140.82.0.0/16]\n      toPorts: [{{ports: [{{port: \"443\", protocol: TCP}}]}}]\n")),
        &cluster(),
    )
    .unwrap();
    assert!(matches!(
        judge(&c, 1, "140.82.112.3", PROTO_TCP, 443),
        PolicyVerdict::Dropped {
            reason: DropReason::PolicyDeny,
            ..
        }
    ));
    assert!(matches!(
        judge(&c, 1, "140.82.112.3", PROTO_TCP, 80),
        PolicyVerdict::Allowed { .. }
    ));
    assert!(matches!(
        judge(&c, 1, "8.8.8.8", PROTO_TCP, 443),
        PolicyVerdict::Allowed {
            match_type: MatchType::L3Only,
            ..
        }
    ));
}

#[test]
fn any_identity_port_rules_apply_to_every_peer() {
    let c = Compiler::new(
        &inline(&format!(
            "{HEAD}  egress:\n    - toPorts: [{{ports: [{{port: \"8080\", protocol: TCP}}]}}]\n"
        )),
        &cluster(),
    )
    .unwrap();
    for to in ["10.0.2.53", "8.8.8.8"] {
        assert!(
            matches!(
                judge(&c, 1, to, PROTO_TCP, 8080),
                PolicyVerdict::Allowed {
                    match_type: MatchType::L4Only,
                    ..
                }
            ),
            "{to}"
        );
        assert!(matches!(
            judge(&c, 1, to, PROTO_TCP, 8081),
            PolicyVerdict::Dropped {
                reason: DropReason::PolicyDenied,
                ..
            }
        ));
    }
}

#[test]
fn end_port_ranges_become_port_prefixes() {
    assert_eq!(port_range_prefixes(8000, 8003), [(8000, 14)]);
    assert_eq!(port_range_prefixes(80, 80), [(80, 16)]);
    assert_eq!(
        port_range_prefixes(1, 6),
        [(1, 16), (2, 15), (4, 15), (6, 16)]
    );
    assert_eq!(port_range_prefixes(0, 65535), [(0, 0)]);
    let covered: usize = port_range_prefixes(1000, 2999)
        .iter()
        .map(|(_, l)| 1usize << (16 - l))
        .sum();
    assert_eq!(covered, 2000);
    let c = Compiler::new(
        &inline(&format!("{HEAD}  egress:\n    - toEntities: [world]\n      toPorts: [{{ports: [{{port: \"8000\", endPort: 8100, protocol: TCP}}]}}]\n")),
        &cluster(),
    )
    .unwrap();
    assert!(matches!(
        judge(&c, 1, "8.8.8.8", PROTO_TCP, 8000),
        PolicyVerdict::Allowed { .. }
    ));
    assert!(matches!(
        judge(&c, 1, "8.8.8.8", PROTO_TCP, 8100),
        PolicyVerdict::Allowed { .. }
    ));
    assert!(matches!(
        judge(&c, 1, "8.8.8.8", PROTO_TCP, 8101),
        PolicyVerdict::Dropped { .. }
    ));
    assert!(matches!(
        judge(&c, 1, "8.8.8.8", PROTO_TCP, 7999),
        PolicyVerdict::Dropped { .. }
    ));
}

#[test]
fn default_deny_can_be_turned_off() {
    let c = Compiler::new(
        &inline(&format!("{HEAD}  enableDefaultDeny: {{egress: false}}\n  egressDeny: [{{toCIDR: [192.0.2.0/24]}}]\n")),
        &cluster(),
    )
    .unwrap();
    assert!(matches!(
        judge(&c, 1, "8.8.8.8", PROTO_TCP, 443),
        PolicyVerdict::Allowed {
            match_type: MatchType::All,
            ..
        }
    ));
    assert!(matches!(
        judge(&c, 1, "192.0.2.7", PROTO_TCP, 443),
        PolicyVerdict::Dropped {
            reason: DropReason::PolicyDeny,
            ..
        }
    ));
    // Any rule with default deny on makes the endpoint default-deny.
    let c = Compiler::new(&inline(&format!("{HEAD}  egress: [{{}}]\n")), &cluster()).unwrap();
    assert!(matches!(
        judge(&c, 1, "8.8.8.8", PROTO_TCP, 443),
        PolicyVerdict::Dropped {
            reason: DropReason::PolicyDenied,
            ..
        }
    ));
}

#[test]
fn cidr_except_is_not_selected() {
    let c = Compiler::new(
        &inline(&format!(
            "{HEAD}  egress: [{{toCIDRSet: [{{cidr: 192.0.0.0/8, except: [192.0.2.0/24]}}]}}]\n"
        )),
        &cluster(),
    )
    .unwrap();
    assert!(matches!(
        judge(&c, 1, "192.1.2.3", PROTO_TCP, 443),
        PolicyVerdict::Allowed { .. }
    ));
    assert!(matches!(
        judge(&c, 1, "192.0.2.3", PROTO_TCP, 443),
        PolicyVerdict::Dropped { .. }
    ));
    assert!(matches!(
        judge(&c, 1, "8.8.8.8", PROTO_TCP, 443),
        PolicyVerdict::Dropped { .. }
    ));
}

#[test]
fn entities_cluster_and_world() {
    let c = Compiler::new(
        &inline(&format!("{HEAD}  egress: [{{toEntities: [cluster]}}]\n")),
        &cluster(),
    )
    .unwrap();
    assert!(matches!(
        judge(&c, 1, "10.0.2.53", PROTO_UDP, 53),
        PolicyVerdict::Allowed { .. }
    ));
    assert!(matches!(
        judge(&c, 1, "8.8.8.8", PROTO_UDP, 53),
        PolicyVerdict::Dropped { .. }
    ));
    let c = Compiler::new(
        &inline(&format!("{HEAD}  egress: [{{toEntities: [world]}}]\n")),
        &cluster(),
    )
    .unwrap();
    assert!(matches!(
        judge(&c, 1, "10.0.2.53", PROTO_UDP, 53),
        PolicyVerdict::Dropped { .. }
    ));
    assert!(matches!(
        judge(&c, 1, "8.8.8.8", PROTO_UDP, 53),
        PolicyVerdict::Allowed { .. }
    ));
}

#[test]
fn a_namespaced_policy_does_not_select_other_namespaces() {
    let yaml = HEAD.replace("app: dns-client", "k8s-app: kube-dns");
    let c = Compiler::new(&inline(&format!("{yaml}  egress: [{{}}]\n")), &cluster()).unwrap();
    // The policy lives in `default`; CoreDNS (kube-system) stays unrestricted.
    assert!(matches!(
        judge(&c, 2, "8.8.8.8", PROTO_UDP, 53),
        PolicyVerdict::Allowed { .. }
    ));
}

/// Found by the differential test: a `0.0.0.0/0` CIDR selected its own `except` prefix,
/// whose identity carries `reserved:world` like every outside identity.
#[test]
fn regression_cidr_zero_with_except_does_not_select_the_except() {
    let c = Compiler::new(
        &inline(&format!(
            "{HEAD}  egress: [{{toCIDRSet: [{{cidr: 0.0.0.0/0, except: [192.0.2.0/24]}}]}}]\n"
        )),
        &cluster(),
    )
    .unwrap();
    assert!(matches!(
        judge(&c, 1, "192.0.2.0", PROTO_TCP, 53),
        PolicyVerdict::Dropped {
            reason: DropReason::PolicyDenied,
            ..
        }
    ));
    assert!(matches!(
        judge(&c, 1, "8.8.8.8", PROTO_TCP, 53),
        PolicyVerdict::Allowed { .. }
    ));
}

/// A learned IP behind its /32 FQDN entry keeps the CIDR rules that name its range: a deny
/// must not be lost to the more specific allow, nor a `toCIDR` allow to the FQDN identity.
#[test]
fn cidr_rules_still_select_learned_ips_inside_their_range() {
    let yaml = format!(
        "{HEAD}  egress:\n    - toFQDNs: [{{matchName: github.com}}]\n      toPorts: [{{ports: [{{port: \"443\", protocol: TCP}}]}}]\n    - toCIDR: [198.51.100.0/24]\n  egressDeny:\n    - toCIDR: [140.82.112.0/24]\n"
    );
    let mut c = Compiler::new(&inline(&yaml), &cluster()).unwrap();
    c.update_ip(ip("140.82.112.3"), names(&["github.com"]))
        .unwrap();
    assert!(matches!(
        judge(&c, 1, "140.82.112.3", PROTO_TCP, 443),
        PolicyVerdict::Dropped {
            reason: DropReason::PolicyDeny,
            ..
        }
    ));
    c.update_ip(ip("140.82.113.3"), names(&["github.com"]))
        .unwrap();
    assert!(matches!(
        judge(&c, 1, "140.82.113.3", PROTO_TCP, 443),
        PolicyVerdict::Allowed { .. }
    ));
    c.update_ip(ip("198.51.100.9"), names(&["github.com"]))
        .unwrap();
    assert!(matches!(
        judge(&c, 1, "198.51.100.9", PROTO_TCP, 80),
        PolicyVerdict::Allowed {
            match_type: MatchType::L3Only,
            ..
        }
    ));
    // When the IP leaves, a /32 that is itself a policy prefix goes back to its CIDR identity.
    let yaml = format!(
        "{HEAD}  egress:\n    - toFQDNs: [{{matchName: github.com}}]\n    - toCIDR: [192.0.2.7/32]\n"
    );
    let mut c = Compiler::new(&inline(&yaml), &cluster()).unwrap();
    let cidr_identity = c.identity_of(ip("192.0.2.7"));
    c.update_ip(ip("192.0.2.7"), names(&["github.com"]))
        .unwrap();
    assert_ne!(c.identity_of(ip("192.0.2.7")), cidr_identity);
    let deltas = c.update_ip(ip("192.0.2.7"), BTreeSet::new()).unwrap();
    assert!(deltas.contains(&Delta::IpcacheUpsert {
        prefix: Prefix::host(ip("192.0.2.7")),
        identity: cidr_identity
    }));
    assert_eq!(c.identity_of(ip("192.0.2.7")), cidr_identity);
}
