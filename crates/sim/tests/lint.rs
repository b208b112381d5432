//! `fqdnpath lint`: each finding on the case it is for, and silence on the fixed ones.

use std::path::{Path, PathBuf};

use fqdnpath_sim::lint::{Finding, lint_files};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/scenarios")
}

fn lint(files: &[&str]) -> Vec<Finding> {
    let paths: Vec<PathBuf> = files.iter().map(|f| dir().join(f)).collect();
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    lint_files(&refs).unwrap()
}

fn codes(findings: &[Finding]) -> Vec<&'static str> {
    findings.iter().map(|f| f.code).collect()
}

#[test]
fn the_gotcha_is_found_with_its_fix_spelled_out() {
    let findings = lint(&[
        "manifests/nodelocaldns-lrp.yaml",
        "manifests/dns-client-broken.yaml",
    ]);
    assert_eq!(codes(&findings), ["lrp-dns-not-allowed"]);
    assert_eq!(findings[0].path, "spec.egress[0].toEndpoints");
    assert!(
        findings[0].message.contains("k8s:k8s-app: node-local-dns"),
        "{}",
        findings[0].message
    );
    assert_eq!(
        codes(&lint(&["nodelocal-lrp-gotcha.yaml"])),
        ["lrp-dns-not-allowed"]
    );
}

#[test]
fn the_fixed_and_secure_policies_are_clean() {
    assert!(
        lint(&[
            "manifests/nodelocaldns-lrp.yaml",
            "manifests/dns-client-fixed.yaml",
            "manifests/secure-workload-policy.yaml"
        ])
        .is_empty()
    );
    assert!(
        lint(&[
            "nodelocal-lrp-fixed.yaml",
            "secure-workload.yaml",
            "cname-chain.yaml"
        ])
        .is_empty()
    );
}

#[test]
fn a_cache_forwarding_to_its_own_redirect_is_a_loop() {
    let findings = lint(&["forwarding-loop.yaml"]);
    assert_eq!(codes(&findings), ["dns-cache-loop"]);
    assert_eq!(findings[0].path, "cluster.daemonsets[0].dns.upstream");
}

#[test]
fn fqdns_under_localdns_learn_nothing() {
    assert_eq!(codes(&lint(&["localdns.yaml"])), ["fqdns-under-localdns"]);
}

#[test]
fn fqdns_without_a_dns_rule_and_impossible_selectors() {
    let tmp = std::env::temp_dir().join(format!("fqdnpath-lint-{}.yaml", std::process::id()));
    let long = "a".repeat(64);
    std::fs::write(
        &tmp,
        format!(
            "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {{name: p, namespace: default}}\nspec:\n  endpointSelector: {{matchLabels: {{app: x}}}}\n  egress:\n    - toFQDNs: [{{matchName: api.example.com}}, {{matchPattern: \"*.{long}.com\"}}]\n      toPorts: [{{ports: [{{port: \"443\", protocol: TCP}}]}}]\n"
        ),
    )
    .unwrap();
    let findings = lint_files(&[tmp.as_path()]).unwrap();
    std::fs::remove_file(&tmp).ok();
    assert_eq!(
        codes(&findings),
        ["fqdns-without-dns-proxy", "selector-never-matches"]
    );
    assert_eq!(findings[0].path, "spec.egress[0].toFQDNs");
    assert_eq!(findings[1].path, "spec.egress[0].toFQDNs[1].matchPattern");
}
