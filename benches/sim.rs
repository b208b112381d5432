//! Simulator speed: a 1000-step scenario (resolves, connects, sends and time steps over the
//! article's cluster), in steps per second. Building the cluster is outside the measurement.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use fqdnpath::sim::{Scenario, Simulation};

const STEPS: usize = 1000;

fn scenario() -> Scenario {
    let mut yaml = String::from(
        r"apiVersion: fqdnpath/v1
kind: Scenario
name: bench
cluster:
  nodes: [node-1, node-2]
  pods:
    - {name: dns-client, namespace: default, node: node-1, ip: 10.0.1.10, labels: {app: dns-client}}
    - {name: coredns-0, namespace: kube-system, node: node-2, ip: 10.0.2.53,
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
  - inline: |
      apiVersion: cilium.io/v2
      kind: CiliumNetworkPolicy
      metadata: {name: client, namespace: default}
      spec:
        endpointSelector: {matchLabels: {app: dns-client}}
        egress:
          - toEndpoints:
              - matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system, k8s:k8s-app: kube-dns}
              - matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system, k8s:k8s-app: node-local-dns}
            toPorts: [{ports: [{port: '53', protocol: ANY}], rules: {dns: [{matchPattern: '*'}]}}]
          - toFQDNs: [{matchPattern: '*.example.com'}]
            toPorts: [{ports: [{port: '443', protocol: TCP}]}]
zone:
",
    );
    for i in 0..50 {
        let _ = writeln!(
            yaml,
            "  - {{name: svc{i}.example.com, type: A, ttl: 30, value: 192.0.2.{}}}",
            i + 1
        );
    }
    yaml.push_str("steps:\n");
    for k in 0..STEPS {
        let i = (k / 4) % 50;
        let step = match k % 4 {
            0 => format!("  - resolve: {{pod: default/dns-client, name: svc{i}.example.com}}\n"),
            1 => format!(
                "  - connect: {{pod: default/dns-client, name: svc{i}.example.com, port: 443, protocol: TCP, as: c{k}}}\n"
            ),
            2 => format!("  - send: {{connection: c{}}}\n", k - 1),
            _ => "  - advance: 2s\n".to_owned(),
        };
        yaml.push_str(&step);
    }
    let mut scenario = Scenario::from_str("bench.yaml", &yaml).unwrap();
    scenario.base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/scenarios");
    scenario
}

fn bench_steps(c: &mut Criterion) {
    let scenario = scenario();
    let report = Simulation::new(scenario.clone()).unwrap().run().unwrap();
    assert!(report.failures.is_empty());
    assert!(report.lines.len() >= STEPS / 2, "the scenario does work");
    let mut group = c.benchmark_group("sim");
    group.throughput(Throughput::Elements(STEPS as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("steps_1000", |b| {
        b.iter_batched(
            || Simulation::new(scenario.clone()).unwrap(),
            |sim| black_box(sim.run().unwrap().lines.len()),
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, bench_steps);
criterion_main!(benches);
