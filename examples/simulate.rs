//! The simulator as a library: builds the article's gotcha scenario in code (broken policy),
//! runs it, then runs it again with the fix applied, and compares the two.
//!
//! Run: `cargo run --example simulate`

use fqdnpath::sim::{Scenario, Simulation};

const SCENARIO: &str = r"
apiVersion: fqdnpath/v1
kind: Scenario
name: what-if
cluster:
  nodes: [node-1]
  pods:
    - {name: dns-client, namespace: default, node: node-1, ip: 10.0.1.10, labels: {app: dns-client}}
    - {name: coredns-0, namespace: kube-system, node: node-1, ip: 10.0.1.53,
       labels: {k8s-app: kube-dns}, dns: {role: authoritative}}
  daemonsets:
    - {name: node-local-dns, namespace: kube-system, labels: {k8s-app: node-local-dns},
       dns: {role: cache, upstream: kube-system/kube-dns-upstream}}
  services:
    - {name: kube-dns, namespace: kube-system, clusterIP: 10.96.0.10, selector: {k8s-app: kube-dns},
       ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}]}
    - {name: kube-dns-upstream, namespace: kube-system, clusterIP: 10.96.0.11,
       selector: {k8s-app: kube-dns}, ports: [{name: dns, port: 53, protocol: UDP}]}
manifests:
  - path: manifests/nodelocaldns-lrp.yaml
  - path: manifests/POLICY.yaml
zone:
  - {name: github.com, type: A, ttl: 60, value: 140.82.112.3}
steps:
  - resolve: {pod: default/dns-client, name: github.com}
  - connect: {pod: default/dns-client, ip: 140.82.112.3, port: 443, protocol: TCP}
";

fn main() {
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/scenarios");
    for policy in ["dns-client-broken", "dns-client-fixed"] {
        let text = SCENARIO.replace("POLICY", policy);
        let mut scenario = match Scenario::from_str("what-if.yaml", &text) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        };
        scenario.base.clone_from(&base);
        let report = match Simulation::new(scenario).and_then(Simulation::run) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        };
        println!("with {policy}:");
        for line in &report.lines {
            println!("  {}", line.text);
        }
    }
}
