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

/// What a test expects of a verdict: its kind and, where the test names them, how it matched
/// or why it dropped.
#[derive(Clone, Copy, Debug)]
enum Want {
    Allowed,
    AllowedAs(MatchType),
    Redirected,
    Dropped,
    DroppedFor(DropReason),
}

impl Want {
    fn admits(self, verdict: &PolicyVerdict) -> bool {
        match (self, verdict) {
            (Want::Allowed, PolicyVerdict::Allowed { .. })
            | (Want::Redirected, PolicyVerdict::Redirected { .. })
            | (Want::Dropped, PolicyVerdict::Dropped { .. }) => true,
            (Want::AllowedAs(want), PolicyVerdict::Allowed { match_type, .. }) => {
                *match_type == want
            }
            (Want::DroppedFor(want), PolicyVerdict::Dropped { reason, .. }) => *reason == want,
            _ => false,
        }
    }
}

/// Dropped by a deny rule.
const DENIED_BY_RULE: Want = Want::DroppedFor(DropReason::PolicyDeny);
/// Dropped for want of an allow.
const NOT_ALLOWED: Want = Want::DroppedFor(DropReason::PolicyDenied);

/// Asserts the verdicts of endpoint `from`'s policy map on packets of `proto` to `(to, port)`.
fn assert_verdicts(c: &Compiler, from: u16, proto: u8, cases: &[(&str, u16, Want)]) {
    for &(to, port, want) in cases {
        let verdict = judge(c, from, to, proto, port);
        assert!(
            want.admits(&verdict),
            "{from} -> {to} proto {proto} port {port}: {verdict:?}, expected {want:?}"
        );
    }
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
    for proto in [PROTO_UDP, PROTO_TCP] {
        assert_verdicts(&fixed, 1, proto, &[("10.0.1.53", 53, Want::Redirected)]);
    }
}

#[test]
fn fqdn_ips_are_reachable_only_once_learned_and_share_an_identity() {
    let mut c = Compiler::new(&policies("dns-client-fixed.yaml"), &cluster()).unwrap();
    assert_eq!(c.identity_of(ip("140.82.112.3")), Identity::WORLD);
    assert_verdicts(&c, 1, PROTO_TCP, &[("140.82.112.3", 443, NOT_ALLOWED)]);
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
    assert_verdicts(
        &c,
        1,
        PROTO_TCP,
        &[
            ("140.82.112.3", 443, Want::AllowedAs(MatchType::L3L4)),
            ("140.82.112.3", 80, Want::Dropped),
        ],
    );
    // Another endpoint in the namespace has no such rule: no policy selects it, allow all.
    assert_verdicts(&c, 4, PROTO_TCP, &[("140.82.112.3", 443, Want::Allowed)]);
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
    assert_verdicts(&c, 1, PROTO_TCP, &[("140.82.112.4", 443, Want::Dropped)]);
}

const HEAD: &str = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: p, namespace: default}\nspec:\n  endpointSelector: {matchLabels: {app: dns-client}}\n";

/// The cluster's compiler for one policy of `dns-client` ([`HEAD`]) whose spec goes on with
/// `rest`.
fn compile(rest: &str) -> Compiler {
    Compiler::new(&inline(&format!("{HEAD}{rest}")), &cluster()).unwrap()
}

#[test]
fn deny_wins_over_allow() {
    let c = compile(
        "  egress: [{toEntities: [world]}]\n  egressDeny:\n    - toCIDR: [140.82.0.0/16]\n      toPorts: [{ports: [{port: \"443\", protocol: TCP}]}]\n",
    );
    assert_verdicts(
        &c,
        1,
        PROTO_TCP,
        &[
            ("140.82.112.3", 443, DENIED_BY_RULE),
            ("140.82.112.3", 80, Want::Allowed),
            ("8.8.8.8", 443, Want::AllowedAs(MatchType::L3Only)),
        ],
    );
}

#[test]
fn any_identity_port_rules_apply_to_every_peer() {
    let c = compile("  egress:\n    - toPorts: [{ports: [{port: \"8080\", protocol: TCP}]}]\n");
    for to in ["10.0.2.53", "8.8.8.8"] {
        let port_8080 = Want::AllowedAs(MatchType::L4Only);
        assert_verdicts(
            &c,
            1,
            PROTO_TCP,
            &[(to, 8080, port_8080), (to, 8081, NOT_ALLOWED)],
        );
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
    let c = compile(
        "  egress:\n    - toEntities: [world]\n      toPorts: [{ports: [{port: \"8000\", endPort: 8100, protocol: TCP}]}]\n",
    );
    // Both ends of the range are in it, the ports next to them are not.
    for (port, want) in [
        (8000, Want::Allowed),
        (8100, Want::Allowed),
        (8101, Want::Dropped),
        (7999, Want::Dropped),
    ] {
        assert_verdicts(&c, 1, PROTO_TCP, &[("8.8.8.8", port, want)]);
    }
}

#[test]
fn default_deny_can_be_turned_off() {
    let c =
        compile("  enableDefaultDeny: {egress: false}\n  egressDeny: [{toCIDR: [192.0.2.0/24]}]\n");
    assert_verdicts(
        &c,
        1,
        PROTO_TCP,
        &[
            ("8.8.8.8", 443, Want::AllowedAs(MatchType::All)),
            ("192.0.2.7", 443, DENIED_BY_RULE),
        ],
    );
    // Any rule with default deny on makes the endpoint default-deny.
    let c = compile("  egress: [{}]\n");
    assert_verdicts(&c, 1, PROTO_TCP, &[("8.8.8.8", 443, NOT_ALLOWED)]);
}

#[test]
fn cidr_except_is_not_selected() {
    let c = compile("  egress: [{toCIDRSet: [{cidr: 192.0.0.0/8, except: [192.0.2.0/24]}]}]\n");
    assert_verdicts(
        &c,
        1,
        PROTO_TCP,
        &[
            ("192.1.2.3", 443, Want::Allowed),
            ("192.0.2.3", 443, Want::Dropped),
            ("8.8.8.8", 443, Want::Dropped),
        ],
    );
}

#[test]
fn entities_cluster_and_world() {
    // Each entity, and what DNS to CoreDNS and to 8.8.8.8 gets.
    for (entity, core_dns, outside) in [
        ("cluster", Want::Allowed, Want::Dropped),
        ("world", Want::Dropped, Want::Allowed),
    ] {
        let c = compile(&format!("  egress: [{{toEntities: [{entity}]}}]\n"));
        let cases = [("10.0.2.53", 53, core_dns), ("8.8.8.8", 53, outside)];
        assert_verdicts(&c, 1, PROTO_UDP, &cases);
    }
}

#[test]
fn a_namespaced_policy_does_not_select_other_namespaces() {
    let yaml = HEAD.replace("app: dns-client", "k8s-app: kube-dns");
    let c = Compiler::new(&inline(&format!("{yaml}  egress: [{{}}]\n")), &cluster()).unwrap();
    // The policy lives in `default`; CoreDNS (kube-system) stays unrestricted.
    assert_verdicts(&c, 2, PROTO_UDP, &[("8.8.8.8", 53, Want::Allowed)]);
}

/// Found by the differential test: a `0.0.0.0/0` CIDR selected its own `except` prefix,
/// whose identity carries `reserved:world` like every outside identity.
#[test]
fn regression_cidr_zero_with_except_does_not_select_the_except() {
    let c = compile("  egress: [{toCIDRSet: [{cidr: 0.0.0.0/0, except: [192.0.2.0/24]}]}]\n");
    let cases = [
        ("192.0.2.0", 53, NOT_ALLOWED),
        ("8.8.8.8", 53, Want::Allowed),
    ];
    assert_verdicts(&c, 1, PROTO_TCP, &cases);
}

/// A learned IP behind its /32 FQDN entry keeps the CIDR rules that name its range: a deny
/// must not be lost to the more specific allow, nor a `toCIDR` allow to the FQDN identity.
#[test]
fn cidr_rules_still_select_learned_ips_inside_their_range() {
    let mut c = compile(
        "  egress:\n    - toFQDNs: [{matchName: github.com}]\n      toPorts: [{ports: [{port: \"443\", protocol: TCP}]}]\n    - toCIDR: [198.51.100.0/24]\n  egressDeny:\n    - toCIDR: [140.82.112.0/24]\n",
    );
    // Each address is learned for github.com, then judged.
    for (to, port, want) in [
        ("140.82.112.3", 443, DENIED_BY_RULE),
        ("140.82.113.3", 443, Want::Allowed),
        ("198.51.100.9", 80, Want::AllowedAs(MatchType::L3Only)),
    ] {
        c.update_ip(ip(to), names(&["github.com"])).unwrap();
        assert_verdicts(&c, 1, PROTO_TCP, &[(to, port, want)]);
    }
    // When the IP leaves, a /32 that is itself a policy prefix goes back to its CIDR identity.
    let mut c = compile(
        "  egress:\n    - toFQDNs: [{matchName: github.com}]\n    - toCIDR: [192.0.2.7/32]\n",
    );
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
