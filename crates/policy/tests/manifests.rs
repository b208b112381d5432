//! Loading manifests: the reference manifests, Cilium's validation rules, errors with file,
//! document and key path, and unknown fields as warnings.

use std::path::PathBuf;

use fqdnpath_policy::manifest::types::Operator;
use fqdnpath_policy::manifest::{NetworkPolicy, SourceError};
use fqdnpath_policy::{Loaded, Manifest, ManifestError, load_file, load_str};

fn reference(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/manifests")
        .join(name)
}

fn error(yaml: &str) -> (usize, String, String) {
    match load_str("test.yaml", yaml) {
        Err(ManifestError::Invalid {
            origin,
            path,
            reason,
        }) => {
            assert_eq!(origin.file, "test.yaml");
            (origin.document, path, reason)
        }
        other => panic!("expected an invalid-manifest error, got {other:?}"),
    }
}

/// The first resource of a load.
fn first(loaded: Result<Loaded, ManifestError>) -> Manifest {
    loaded.unwrap().manifests.into_iter().next().unwrap().value
}

/// The first resource of a load, which must be a network policy.
fn first_policy(loaded: Result<Loaded, ManifestError>) -> NetworkPolicy {
    first(loaded).into_network_policy().expect("not a policy")
}

const HEAD: &str =
    "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: p, namespace: ns}\n";

fn policy(spec: &str) -> String {
    format!("{HEAD}spec:\n  endpointSelector: {{matchLabels: {{app: a}}}}\n{spec}")
}

/// What the reason of a rejection must be.
#[derive(Clone, Copy, Debug)]
enum Reason {
    /// Any: the case is about the key path.
    Any,
    /// Exactly this text.
    Is(&'static str),
    /// A text that contains this.
    Says(&'static str),
}

use Reason::{Any, Is, Says};

/// Asserts that each policy whose spec goes on with `spec` ([`policy`]) is rejected at the
/// key `path`, for `reason`.
fn assert_rejected(cases: &[(&str, &str, Reason)]) {
    for &(spec, path, reason) in cases {
        let (_, found, why) = error(&policy(spec));
        assert_eq!(found, path, "{spec}");
        match reason {
            Any => {}
            Is(text) => assert_eq!(why, text, "{spec}"),
            Says(text) => assert!(why.contains(text), "{spec}: {why}"),
        }
    }
}

#[test]
fn every_reference_manifest_loads_without_warnings() {
    let mut kinds = Vec::new();
    for name in [
        "dns-client-broken.yaml",
        "dns-client-fixed.yaml",
        "node-local-dns-daemonset.yaml",
        "nodelocaldns-lrp.yaml",
        "secure-workload-policy.yaml",
    ] {
        let loaded = load_file(&reference(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(loaded.warnings.is_empty(), "{name}: {:?}", loaded.warnings);
        assert_eq!(loaded.manifests.len(), 1, "{name}");
        kinds.push(loaded.manifests[0].value.kind().to_owned());
    }
    assert_eq!(
        kinds,
        [
            "CiliumNetworkPolicy",
            "CiliumNetworkPolicy",
            "DaemonSet",
            "CiliumLocalRedirectPolicy",
            "CiliumNetworkPolicy"
        ]
    );
}

#[test]
fn the_broken_policy_reads_as_written() {
    let p = first_policy(load_file(&reference("dns-client-broken.yaml")));
    assert_eq!(p.metadata.namespace.as_deref(), Some("default"));
    let rule = p.spec.as_ref().unwrap();
    assert_eq!(rule.egress.len(), 2);
    let dns = &rule.egress[0];
    assert_eq!(dns.to_endpoints[0].match_labels["k8s:k8s-app"], "kube-dns");
    let port = &dns.to_ports[0].ports[0];
    assert_eq!(
        (port.port.0.as_str(), port.protocol.as_str()),
        ("53", "ANY")
    );
    let rules = dns.to_ports[0]
        .rules
        .as_ref()
        .unwrap()
        .dns
        .as_ref()
        .unwrap();
    assert_eq!(rules[0].match_pattern.as_deref(), Some("*"));
    assert_eq!(
        rule.egress[1].to_fqdns[0].selector().unwrap().value(),
        "github.com."
    );
}

#[test]
fn the_lrp_pairs_ports_by_name() {
    let Manifest::LocalRedirectPolicy(lrp) = first(load_file(&reference("nodelocaldns-lrp.yaml")))
    else {
        panic!("not an LRP");
    };
    let svc = lrp.spec.redirect_frontend.service_matcher.as_ref().unwrap();
    assert_eq!(
        (svc.service_name.as_str(), svc.namespace.as_str()),
        ("kube-dns", "kube-system")
    );
    let names: Vec<_> = lrp
        .spec
        .redirect_backend
        .to_ports
        .iter()
        .map(|p| p.name.as_deref().unwrap())
        .collect();
    assert_eq!(names, ["dns", "dns-tcp"]);
}

#[test]
fn multi_document_files_count_documents_from_one_skipping_empty_ones() {
    let yaml = format!(
        "{}---\n---\n{HEAD}spec:\n  endpointSelector: {{}}\n  egress:\n    - toPorts: [{{ports: [{{port: http-alt}}]}}]\n---\n{HEAD}spec:\n  endpointSelector: {{}}\n  egress:\n    - toPorts: [{{ports: [{{port: \"99999\"}}]}}]\n",
        policy("  egress: [{toEntities: [world]}]\n")
    );
    let (document, path, reason) = error(&yaml);
    // The policy, an empty document (not counted), a good policy, then the bad one.
    assert_eq!(document, 3);
    assert_eq!(path, "spec.egress[0].toPorts[0].ports[0].port");
    assert!(reason.contains("unable to parse port"), "{reason}");
}

#[test]
fn unknown_fields_are_warnings_with_their_path() {
    let yaml = policy(
        "  egress:\n    - toFQDN: [{matchName: a.com}]\n      toEntities: [world]\n  bogus: 1\n",
    )
    .replace(
        "metadata: {name: p, namespace: ns}",
        "metadata: {name: p, namespace: ns, uid: x, colour: red}",
    );
    let loaded = load_str("w.yaml", &yaml).unwrap();
    let mut paths: Vec<_> = loaded.warnings.iter().map(|w| w.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        ["metadata.colour", "spec.bogus", "spec.egress[0].toFQDN"]
    );
    assert_eq!(
        loaded
            .warnings
            .iter()
            .find(|w| w.path == "spec.bogus")
            .unwrap()
            .to_string(),
        "w.yaml: document 1: spec.bogus: unknown field"
    );
}

#[test]
fn type_errors_name_the_key_path() {
    assert_rejected(&[(
        "  egress:\n    - toPorts: [{ports: [{port: 53, endPort: many}]}]\n",
        "spec.egress[0].toPorts[0].ports[0].endPort",
        Says("invalid type"),
    )]);
}

#[test]
fn ports_may_be_strings_or_numbers() {
    let p = first_policy(load_str(
        "p.yaml",
        &policy(
            "  egress:\n    - toPorts: [{ports: [{port: 53, protocol: udp}, {port: \"443\"}]}]\n",
        ),
    ));
    let ports = &p.spec.as_ref().unwrap().egress[0].to_ports[0].ports;
    assert_eq!(ports[0].port.0, "53");
    assert_eq!(ports[1].port.0, "443");
}

#[test]
fn a_to_fqdns_entry_sets_exactly_one_of_match_name_and_match_pattern() {
    assert_rejected(&[
        (
            "  egress:\n    - toFQDNs: [{matchName: a.com, matchPattern: \"*.a.com\"}]\n",
            "spec.egress[0].toFQDNs[0]",
            Says("only one of"),
        ),
        (
            "  egress:\n    - toFQDNs: [{}]\n",
            "spec.egress[0].toFQDNs[0]",
            Any,
        ),
    ]);
}

#[test]
fn selector_syntax_errors_name_the_field() {
    assert_rejected(&[
        (
            "  egress:\n    - toFQDNs: [{matchPattern: \"api.exa$mple.com\"}]\n",
            "spec.egress[0].toFQDNs[0].matchPattern",
            Says("'$'"),
        ),
        (
            "  egress:\n    - toEndpoints: [{}]\n      toPorts: [{ports: [{port: \"53\"}], rules: {dns: [{matchName: \"a b\"}]}}]\n",
            "spec.egress[0].toPorts[0].rules.dns[0].matchName",
            Any,
        ),
    ]);
}

#[test]
fn to_fqdns_is_not_mixed_with_other_l3_peers() {
    assert_rejected(&[(
        "  egress:\n    - toFQDNs: [{matchName: a.com}]\n      toEndpoints: [{}]\n",
        "spec.egress[0]",
        Is("combining toEndpoints and toFQDNs is not supported yet (use separate rules)"),
    )]);
}

#[test]
fn egress_deny_has_no_to_fqdns_and_no_l7() {
    assert_rejected(&[
        (
            "  egressDeny:\n    - toFQDNs: [{matchName: a.com}]\n",
            "spec.egressDeny[0].toFQDNs",
            Any,
        ),
        (
            "  egressDeny:\n    - toEndpoints: [{}]\n      toPorts: [{ports: [{port: \"53\"}], rules: {dns: [{matchPattern: \"*\"}]}}]\n",
            "spec.egressDeny[0].toPorts[0].rules",
            Any,
        ),
    ]);
}

#[test]
fn port_ranges_are_not_allowed_with_l7_rules() {
    assert_rejected(&[(
        "  egress:\n    - toEndpoints: [{}]\n      toPorts: [{ports: [{port: \"53\", endPort: 60}], rules: {dns: [{matchPattern: \"*\"}]}}]\n",
        "spec.egress[0].toPorts[0].ports[0].endPort",
        Is("DNS rules do not support port ranges"),
    )]);
    // Without L7 rules a range is fine.
    load_str(
        "ok.yaml",
        &policy("  egress:\n    - toEndpoints: [{}]\n      toPorts: [{ports: [{port: \"8000\", endPort: 8100}]}]\n"),
    )
    .unwrap();
}

#[test]
fn dns_rules_need_a_port_and_http_rules_need_tcp() {
    assert_rejected(&[
        (
            "  egress:\n    - toEndpoints: [{}]\n      toPorts: [{rules: {dns: [{matchPattern: \"*\"}]}}]\n",
            "spec.egress[0].toPorts[0].ports",
            Is("port 53 must be specified for DNS rules"),
        ),
        (
            "  egress:\n    - toEndpoints: [{}]\n      toPorts: [{ports: [{port: \"80\", protocol: UDP}], rules: {http: [{}]}}]\n",
            "spec.egress[0].toPorts[0].ports[0].protocol",
            Says("only apply to TCP (not UDP)"),
        ),
    ]);
}

#[test]
fn cidr_set_excepts_must_lie_inside_the_cidr() {
    assert_rejected(&[(
        "  egress:\n    - toCIDRSet: [{cidr: 10.0.0.0/8, except: [192.168.0.0/16]}]\n",
        "spec.egress[0].toCIDRSet[0].except[0]",
        Says("does not contain"),
    )]);
    load_str(
        "ok.yaml",
        &policy("  egress:\n    - toCIDRSet: [{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}]\n"),
    )
    .unwrap();
}

#[test]
fn unknown_entities_protocols_and_operators_are_rejected() {
    assert_rejected(&[
        (
            "  egress:\n    - toEntities: [everything]\n",
            "spec.egress[0].toEntities[0]",
            Is("unsupported entity: everything"),
        ),
        (
            "  egress:\n    - toEndpoints: [{}]\n      toPorts: [{ports: [{port: \"53\", protocol: QUIC}]}]\n",
            "spec.egress[0].toPorts[0].ports[0].protocol",
            Any,
        ),
        (
            "  egress:\n    - toEndpoints: [{matchExpressions: [{key: app, operator: Maybe}]}]\n",
            "spec.egress[0].toEndpoints[0].matchExpressions[0].operator",
            Any,
        ),
        (
            "  egress:\n    - toEndpoints: [{matchExpressions: [{key: app, operator: In}]}]\n",
            "spec.egress[0].toEndpoints[0].matchExpressions[0].values",
            Any,
        ),
    ]);
}

#[test]
fn a_rule_needs_a_selector_and_a_direction() {
    let (_, path, reason) = error(&format!(
        "{HEAD}spec:\n  egress: [{{toEntities: [world]}}]\n"
    ));
    assert_eq!(path, "spec");
    assert!(
        reason.contains("endpointSelector or nodeSelector"),
        "{reason}"
    );
    let (_, _, reason) = error(&policy(""));
    assert!(reason.contains("at least one of"), "{reason}");
    let (_, path, reason) = error(HEAD);
    assert_eq!(path, "spec");
    assert!(reason.contains("empty policy"), "{reason}");
}

#[test]
fn ingress_is_parsed_and_kept() {
    let p = first_policy(load_str(
        "i.yaml",
        &policy(
            "  ingress:\n    - fromEndpoints: [{matchExpressions: [{key: app, operator: Exists}]}]\n",
        ),
    ));
    let rule = p.spec.as_ref().unwrap();
    assert_eq!(
        rule.ingress[0].from_endpoints[0].match_expressions[0].operator,
        Operator::Exists
    );
    assert_rejected(&[(
        "  ingress:\n    - fromEndpoints: [{}]\n      toPorts: [{ports: [{port: \"53\"}], rules: {dns: [{matchPattern: \"*\"}]}}]\n",
        "spec.ingress[0].toPorts[0].rules.dns",
        Any,
    )]);
}

#[test]
fn lrp_rules_follow_cilium() {
    let lrp = |frontend: &str, backend_ports: &str| {
        format!(
            "apiVersion: cilium.io/v2\nkind: CiliumLocalRedirectPolicy\nmetadata: {{name: l, namespace: kube-system}}\nspec:\n  redirectFrontend:\n{frontend}  redirectBackend:\n    localEndpointSelector: {{matchLabels: {{k8s-app: node-local-dns}}}}\n    toPorts: {backend_ports}\n"
        )
    };
    let svc = "    serviceMatcher: {serviceName: kube-dns, namespace: kube-system}\n";
    load_str("ok.yaml", &lrp(svc, "[{port: \"53\", protocol: UDP}]")).unwrap();
    let (_, path, reason) = error(&lrp(
        svc,
        "[{port: \"53\", protocol: UDP}, {port: \"53\", protocol: TCP}]",
    ));
    assert_eq!(path, "spec.redirectBackend.toPorts[0].name");
    assert!(reason.contains("IANA_SVC_NAME"), "{reason}");
    let (_, path, _) = error(&lrp(
        "    serviceMatcher: {serviceName: kube-dns, namespace: default}\n",
        "[{port: \"53\", protocol: UDP}]",
    ));
    assert_eq!(path, "spec.redirectFrontend.serviceMatcher.namespace");
    let (_, path, _) = error(&lrp(
        &format!(
            "{svc}    addressMatcher: {{ip: 169.254.20.10, toPorts: [{{port: \"53\", protocol: UDP}}]}}\n"
        ),
        "[{port: \"53\", protocol: UDP}]",
    ));
    assert_eq!(path, "spec.redirectFrontend");
    let (_, path, reason) = error(&lrp(
        "    addressMatcher: {ip: 169.254.20.10, toPorts: [{port: \"53\", protocol: TCP}]}\n",
        "[{port: \"53\", protocol: UDP}]",
    ));
    assert_eq!(path, "spec.redirectBackend.toPorts[0].protocol");
    assert_eq!(reason, "backend protocol must match with frontend protocol");
}

#[test]
fn invalid_yaml_and_non_manifests_are_typed_errors() {
    let err = load_str("bad.yaml", "a: [1, 2\n").unwrap_err();
    assert!(
        matches!(err, ManifestError::Source(SourceError::Yaml { .. })),
        "{err}"
    );
    assert!(
        err.to_string().starts_with("bad.yaml: invalid YAML"),
        "{err}"
    );
    let (document, path, _) = error("- just\n- a list\n");
    assert_eq!((document, path.as_str()), (1, ""));
    let (_, path, _) = error("kind: CiliumNetworkPolicy\n");
    assert_eq!(path, "apiVersion");
    let (_, path, reason) = error("apiVersion: cilium.io/v2alpha1\nkind: CiliumNetworkPolicy\n");
    assert_eq!(path, "apiVersion");
    assert!(reason.contains("cilium.io/v2"), "{reason}");
    let err = load_file(&reference("no-such-file.yaml")).unwrap_err();
    assert!(matches!(err, ManifestError::Source(SourceError::Io { .. })));
}
