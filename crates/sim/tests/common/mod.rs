//! Random two-phase cases (resolve, then connect) for the property tests: random zones,
//! selector sets, denies, datapath latencies and step sequences, each written as a scenario
//! whose expectations an oracle derives from the two-phase properties (see `two_phase.rs`).
//! Shared by `two_phase.rs` and `hubble_output.rs`.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use proptest::prelude::*;

const NAMES: &[&str] = &["a.example.com", "b.example.com", "c.other.org"];
const SELECTORS: &[(&str, &str)] = &[
    ("matchName", "a.example.com"),
    ("matchPattern", "*.example.com"),
    ("matchName", "c.other.org"),
];
const LATENCIES_MS: &[u64] = &[0, 5, 50, 250];
const MAX_DELAY_MS: u64 = 100;

#[derive(Clone, Debug)]
enum Op {
    Resolve(usize),
    ConnectName(usize, u16),
    ConnectIp(u8),
    Advance(u64),
}

/// One random case.
#[derive(Clone, Debug)]
pub(crate) struct Case {
    /// Per name: its addresses (last octet in 192.0.2.0/24) and TTL.
    zone: Vec<(Vec<u8>, u32)>,
    selectors: Vec<usize>,
    deny: Option<u8>,
    latency_ms: u64,
    ops: Vec<Op>,
}

/// Random cases.
pub(crate) fn case() -> impl Strategy<Value = Case> {
    let zone = prop::collection::vec(
        (
            prop::collection::vec(1u8..7, 1..3),
            prop::sample::select(&[5u32, 30, 300][..]),
        ),
        NAMES.len(),
    );
    let op = prop_oneof![
        3 => (0..NAMES.len()).prop_map(Op::Resolve),
        3 => (0..NAMES.len(), prop::sample::select(&[443u16, 443, 80][..])).prop_map(|(n, p)| Op::ConnectName(n, p)),
        2 => (1u8..8).prop_map(Op::ConnectIp),
        1 => prop::sample::select(&[1u64, 10, 70, 200][..]).prop_map(Op::Advance),
    ];
    (
        zone,
        prop::sample::subsequence(
            (0..SELECTORS.len()).collect::<Vec<_>>(),
            1..=SELECTORS.len(),
        ),
        prop::option::weighted(0.3, 1u8..7),
        prop::sample::select(LATENCIES_MS),
        prop::collection::vec(op, 1..24),
    )
        .prop_map(|(mut zone, selectors, deny, latency_ms, ops)| {
            for (ips, _) in &mut zone {
                ips.dedup();
            }
            Case {
                zone,
                selectors,
                deny,
                latency_ms,
                ops,
            }
        })
}

fn selected(case: &Case, name: &str) -> bool {
    case.selectors.iter().any(|&s| match SELECTORS[s] {
        ("matchName", n) => n == name,
        (_, pattern) => {
            let suffix = pattern.trim_start_matches('*');
            name.ends_with(suffix) && !name[..name.len() - suffix.len()].contains('.')
        }
    })
}

/// The scenario of a case, with the oracle's expectations.
pub(crate) fn scenario(case: &Case) -> String {
    let mut y = String::new();
    let _ = write!(
        y,
        "apiVersion: fqdnpath/v1\nkind: Scenario\nname: two-phase\nagent:\n  tofqdns-proxy-response-max-delay: {MAX_DELAY_MS}ms\ndatapath:\n  update-latency: {}ms\ncluster:\n  nodes: [n1]\n  pods:\n    - {{name: client, namespace: default, node: n1, ip: 10.0.1.10, labels: {{app: client}}}}\n    - {{name: coredns, namespace: kube-system, node: n1, ip: 10.0.1.53, labels: {{k8s-app: kube-dns}}, dns: {{role: authoritative}}}}\n  services:\n    - {{name: kube-dns, namespace: kube-system, clusterIP: 10.96.0.10, selector: {{k8s-app: kube-dns}}, ports: [{{name: dns, port: 53, protocol: UDP}}]}}\nmanifests:\n  - inline: |\n      apiVersion: cilium.io/v2\n      kind: CiliumNetworkPolicy\n      metadata: {{name: client, namespace: default}}\n      spec:\n        endpointSelector: {{matchLabels: {{app: client}}}}\n        egress:\n          - toEndpoints: [{{matchLabels: {{k8s:io.kubernetes.pod.namespace: kube-system, k8s:k8s-app: kube-dns}}}}]\n            toPorts: [{{ports: [{{port: \"53\", protocol: ANY}}], rules: {{dns: [{{matchPattern: \"*\"}}]}}}}]\n          - toFQDNs: [{}]\n            toPorts: [{{ports: [{{port: \"443\", protocol: TCP}}]}}]\n",
        case.latency_ms,
        case.selectors
            .iter()
            .map(|&s| format!("{{{}: \"{}\"}}", SELECTORS[s].0, SELECTORS[s].1))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(d) = case.deny {
        let _ = writeln!(y, "        egressDeny: [{{toCIDR: [192.0.2.{d}/32]}}]");
    }
    y.push_str("zone:\n");
    for (n, (ips, ttl)) in case.zone.iter().enumerate() {
        for ip in ips {
            let _ = writeln!(
                y,
                "  - {{name: {}, type: A, ttl: {ttl}, value: 192.0.2.{ip}}}",
                NAMES[n]
            );
        }
    }
    y.push_str("steps:\n");
    // The oracle's state: IPs any allowed answer of a selected name ever carried.
    let mut learned: BTreeSet<u8> = BTreeSet::new();
    let mut resolved: BTreeSet<usize> = BTreeSet::new();
    let mut previous: Option<&Op> = None;
    for op in &case.ops {
        match op {
            Op::Resolve(n) => {
                let ips: Vec<String> = case.zone[*n]
                    .0
                    .iter()
                    .map(|i| format!("192.0.2.{i}"))
                    .collect();
                let _ = writeln!(
                    y,
                    "  - resolve: {{pod: default/client, name: {}}}\n    expect: {{rcode: NOERROR, ips: [{}]}}",
                    NAMES[*n],
                    ips.join(", ")
                );
                resolved.insert(*n);
            }
            Op::ConnectName(n, port) if resolved.contains(n) => {
                let first = case.zone[*n].0[0];
                let just_resolved = matches!(previous, Some(Op::Resolve(r)) if r == n);
                let expect = if *port != 443 || case.deny == Some(first) {
                    Some("DROPPED") // wrong port, or deny wins
                } else if just_resolved
                    && selected(case, NAMES[*n])
                    && case.latency_ms <= MAX_DELAY_MS
                {
                    Some("FORWARDED") // completeness
                } else if (just_resolved
                    && case.latency_ms > MAX_DELAY_MS
                    && !learned.contains(&first))
                    || (!learned.contains(&first) && !selected(case, NAMES[*n]))
                {
                    // The hold timed out and the connect races the map update, or nothing
                    // ever allowed this IP (soundness).
                    Some("DROPPED")
                } else {
                    None
                };
                let _ = writeln!(
                    y,
                    "  - connect: {{pod: default/client, name: {}, port: {port}, protocol: TCP}}",
                    NAMES[*n]
                );
                if let Some(v) = expect {
                    let _ = writeln!(y, "    expect: {{verdict: {v}}}");
                }
            }
            Op::ConnectName(..) => continue,
            Op::ConnectIp(ip) => {
                let expect = (case.deny == Some(*ip) || !learned.contains(ip)).then_some("DROPPED");
                let _ = writeln!(
                    y,
                    "  - connect: {{pod: default/client, ip: 192.0.2.{ip}, port: 443, protocol: TCP}}"
                );
                if let Some(v) = expect {
                    let _ = writeln!(y, "    expect: {{verdict: {v}}}");
                }
            }
            Op::Advance(s) => {
                let _ = writeln!(y, "  - advance: {s}s");
            }
        }
        if let Op::Resolve(n) = op
            && selected(case, NAMES[*n])
        {
            learned.extend(case.zone[*n].0.iter().copied());
        }
        previous = Some(op);
    }
    // A last step, so that a case of skipped connects still has steps.
    y.push_str("  - advance: 1s\n");
    y
}
