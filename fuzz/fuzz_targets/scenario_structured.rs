//! Structured scenarios through the simulator: a small cluster (one or two nodes, up to three
//! client pods, each with its own `toFQDNs` policy, maybe a `toCIDR` allow and an `egressDeny`),
//! a zone, a datapath latency and a timeline of resolves, connects, clock advances, agent
//! restarts and zone updates. An oracle writes the expectations that the two-phase properties
//! imply, and the simulator must meet every one of them:
//!
//! - soundness: a connect to an IP for which no answer learned on the pod's node ever paired
//!   it with a name the pod's policy selects (and which no `toCIDR` of the pod allows) is
//!   dropped; so is any connect on a port the pod's policy does not open;
//! - completeness: resolve, then connect at once to a selected name, is forwarded whenever the
//!   datapath latency is within `tofqdns-proxy-response-max-delay`; a `toCIDR` allow forwards;
//! - hold: above the max delay, the answer is released before the datapath holds it, and a
//!   connect right after it to an IP never learned before loses the race (dropped);
//! - deny wins: an IP under the pod's `egressDeny` is dropped with `POLICY_DENY`, learned or not;
//! - the answers are the zone's, and every expectation written is checked;
//! - determinism: the same scenario gives the same report.
//!
//! A failing input prints its scenario YAML.
#![no_main]

use std::collections::BTreeSet;
use std::fmt::Write as _;

use arbitrary::Arbitrary;
use fqdnpath_sim::{Scenario, Simulation};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 4] = [
    "a.example.com",
    "b.example.com",
    "c.other.org",
    "d.x.other.org",
];
const SELECTORS: [(&str, &str); 5] = [
    ("matchName", "a.example.com"),
    ("matchPattern", "*.example.com"),
    ("matchName", "c.other.org"),
    ("matchPattern", "*.other.org"),
    ("matchPattern", "*"),
];
const LATENCIES_MS: [u64; 4] = [0, 5, 50, 250];
const MAX_DELAY_MS: u64 = 100;
const TTLS: [u32; 3] = [5, 30, 300];
const ADVANCES_S: [u64; 5] = [1, 10, 30, 70, 200];
const PORTS: [u16; 3] = [443, 80, 8443];
/// The last octets in 192.0.2.0/24 that zones use; 7 is never in a zone.
const OCTETS: u8 = 6;

#[derive(Debug, Arbitrary)]
struct PodInput {
    on_second_node: bool,
    /// Bit i: the policy's `toFQDNs` holds `SELECTORS[i]` (none set: the first).
    selectors: u8,
    /// The port its `toFQDNs` (and `toCIDR`) rule opens.
    port: u8,
    deny: Option<u8>,
    allow_cidr: Option<u8>,
}

#[derive(Debug, Arbitrary)]
struct NameInput {
    ips: Vec<u8>,
    ttl: u8,
}

#[derive(Debug, Arbitrary)]
enum OpInput {
    Resolve { pod: u8, name: u8 },
    ConnectName { pod: u8, name: u8, port: u8 },
    ConnectIp { pod: u8, ip: u8, port: u8 },
    Advance(u8),
    RestartAgent(bool),
    UpdateZone { name: u8, records: NameInput },
}

#[derive(Debug, Arbitrary)]
struct Input {
    two_nodes: bool,
    pods: Vec<PodInput>,
    zone: [NameInput; 4],
    latency: u8,
    ops: Vec<OpInput>,
}

struct Pod {
    node: usize,
    selectors: Vec<usize>,
    port: u16,
    deny: Option<u8>,
    allow_cidr: Option<u8>,
}

impl Pod {
    fn selects(&self, name: &str) -> bool {
        self.selectors.iter().any(|&s| match SELECTORS[s] {
            ("matchName", n) => n == name,
            (_, "*") => true,
            (_, pattern) => {
                // `*.suffix`: exactly one more label.
                let suffix = pattern.trim_start_matches('*');
                name.ends_with(suffix) && !name[..name.len() - suffix.len()].contains('.')
            }
        })
    }
}

/// The addresses of a zone entry: 1 to 3 distinct last octets in 1..=6, in the input's order.
fn addresses(input: &NameInput) -> (Vec<u8>, u32) {
    let mut ips: Vec<u8> = Vec::new();
    for ip in input.ips.iter().map(|i| i % OCTETS + 1) {
        if !ips.contains(&ip) && ips.len() < 3 {
            ips.push(ip);
        }
    }
    if ips.is_empty() {
        ips.push(1);
    }
    (ips, TTLS[usize::from(input.ttl) % TTLS.len()])
}

fn zone_records(y: &mut String, indent: &str, name: &str, ips: &[u8], ttl: u32) {
    for ip in ips {
        let _ = writeln!(
            y,
            "{indent}- {{name: {name}, type: A, ttl: {ttl}, value: 192.0.2.{ip}}}"
        );
    }
}

fn policy(i: usize, pod: &Pod) -> String {
    let fqdns: Vec<String> = pod
        .selectors
        .iter()
        .map(|&s| format!("{{{}: \"{}\"}}", SELECTORS[s].0, SELECTORS[s].1))
        .collect();
    let mut p = format!(
        "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {{name: client-{i}, namespace: default}}\nspec:\n  endpointSelector: {{matchLabels: {{app: client-{i}}}}}\n  egress:\n    - toEndpoints: [{{matchLabels: {{k8s:io.kubernetes.pod.namespace: kube-system, k8s:k8s-app: kube-dns}}}}]\n      toPorts: [{{ports: [{{port: \"53\", protocol: ANY}}], rules: {{dns: [{{matchPattern: \"*\"}}]}}}}]\n    - toFQDNs: [{}]\n      toPorts: [{{ports: [{{port: \"{}\", protocol: TCP}}]}}]\n",
        fqdns.join(", "),
        pod.port
    );
    if let Some(c) = pod.allow_cidr {
        let _ = writeln!(
            p,
            "    - toCIDR: [192.0.2.{c}/32]\n      toPorts: [{{ports: [{{port: \"{}\", protocol: TCP}}]}}]",
            pod.port
        );
    }
    if let Some(d) = pod.deny {
        let _ = writeln!(p, "  egressDeny: [{{toCIDR: [192.0.2.{d}/32]}}]");
    }
    p
}

/// Per node: the (name, last octet) pairs that answers learned there.
type Learned = Vec<BTreeSet<(usize, u8)>>;

/// Whether an answer learned on the pod's node paired `ip` with a name the pod selects.
fn reachable(learned: &Learned, pod: &Pod, ip: u8) -> bool {
    learned[pod.node]
        .iter()
        .any(|&(n, i)| i == ip && pod.selects(NAMES[n]))
}

/// The verdict a connect must get, if the properties fix it. When the previous step resolved
/// the name connected to, `resolved` holds what was learned before it, and whether the pod's
/// policy selects that name.
fn verdict(
    pod: &Pod,
    ip: u8,
    port: u16,
    latency_ms: u64,
    learned: &Learned,
    resolved: Option<(&Learned, bool)>,
) -> Option<&'static str> {
    if pod.deny == Some(ip) || port != pod.port {
        return Some("DROPPED");
    }
    if pod.allow_cidr == Some(ip) {
        return Some("FORWARDED");
    }
    match resolved {
        // Completeness: the answer was held until the datapath had it.
        Some((_, true)) if latency_ms <= MAX_DELAY_MS => return Some("FORWARDED"),
        // Hold: released first, while the map update is still on its way.
        Some((before, _)) if latency_ms > MAX_DELAY_MS && !reachable(before, pod, ip) => {
            return Some("DROPPED");
        }
        _ => {}
    }
    // Soundness.
    (!reachable(learned, pod, ip)).then_some("DROPPED")
}

/// The scenario of an input, with the oracle's expectations, and how many it wrote.
fn scenario(input: &Input) -> (String, usize) {
    let nodes = if input.two_nodes { 2 } else { 1 };
    let latency = LATENCIES_MS[usize::from(input.latency) % LATENCIES_MS.len()];
    let mut pods: Vec<Pod> = input
        .pods
        .iter()
        .take(3)
        .map(|p| {
            let mut selectors: Vec<usize> = (0..SELECTORS.len())
                .filter(|i| p.selectors & (1 << i) != 0)
                .collect();
            if selectors.is_empty() {
                selectors.push(0);
            }
            Pod {
                node: usize::from(p.on_second_node && nodes == 2),
                selectors,
                port: PORTS[usize::from(p.port) % PORTS.len()],
                deny: p.deny.map(|d| d % (OCTETS + 1) + 1),
                allow_cidr: p.allow_cidr.map(|c| c % (OCTETS + 1) + 1),
            }
        })
        .collect();
    if pods.is_empty() {
        pods.push(Pod {
            node: 0,
            selectors: vec![1],
            port: 443,
            deny: None,
            allow_cidr: None,
        });
    }
    let mut y = String::new();
    let _ = write!(
        y,
        "apiVersion: fqdnpath/v1\nkind: Scenario\nname: structured\nagent:\n  tofqdns-proxy-response-max-delay: {MAX_DELAY_MS}ms\ndatapath:\n  update-latency: {latency}ms\ncluster:\n  nodes: [{}]\n  pods:\n    - {{name: coredns, namespace: kube-system, node: n1, ip: 10.0.1.53, labels: {{k8s-app: kube-dns}}, dns: {{role: authoritative}}}}\n",
        if nodes == 2 { "n1, n2" } else { "n1" }
    );
    for (i, p) in pods.iter().enumerate() {
        let _ = writeln!(
            y,
            "    - {{name: client-{i}, namespace: default, node: n{}, ip: 10.0.{}.{}, labels: {{app: client-{i}}}}}",
            p.node + 1,
            p.node + 1,
            10 + i
        );
    }
    y.push_str("  services:\n    - {name: kube-dns, namespace: kube-system, clusterIP: 10.96.0.10, selector: {k8s-app: kube-dns}, ports: [{name: dns, port: 53, protocol: UDP}]}\nmanifests:\n");
    for (i, p) in pods.iter().enumerate() {
        y.push_str("  - inline: |\n");
        for line in policy(i, p).lines() {
            let _ = writeln!(y, "      {line}");
        }
    }
    // The oracle's state.
    let mut learned: Learned = vec![BTreeSet::new(); nodes];
    // Per pod and name: the addresses of its last answer.
    let mut answers: Vec<[Option<Vec<u8>>; 4]> = pods.iter().map(|_| Default::default()).collect();
    let mut zone: Vec<(Vec<u8>, u32)> = input.zone.iter().map(addresses).collect();
    let mut expectations = 0;
    y.push_str("zone:\n");
    for (n, (ips, ttl)) in zone.iter().enumerate() {
        zone_records(&mut y, "  ", NAMES[n], ips, *ttl);
    }
    y.push_str("steps:\n");
    // The state before the last step, when that step was a resolve: (pod, name, learned).
    let mut last_resolve: Option<(usize, usize, Learned)> = None;
    for op in input.ops.iter().take(24) {
        let mut resolved = None;
        match op {
            OpInput::Resolve { pod, name } => {
                let (p, n) = (
                    usize::from(*pod) % pods.len(),
                    usize::from(*name) % NAMES.len(),
                );
                let ips = zone[n].0.clone();
                let list: Vec<String> = ips.iter().map(|i| format!("192.0.2.{i}")).collect();
                let _ = writeln!(
                    y,
                    "  - resolve: {{pod: default/client-{p}, name: {}}}\n    expect: {{verdict: REDIRECTED, rcode: NOERROR, ips: [{}]}}",
                    NAMES[n],
                    list.join(", ")
                );
                expectations += 3;
                let before = learned.clone();
                learned[pods[p].node].extend(ips.iter().map(|&i| (n, i)));
                answers[p][n] = Some(ips);
                resolved = Some((p, n, before));
            }
            OpInput::ConnectName { pod, name, port } => {
                let (p, n) = (
                    usize::from(*pod) % pods.len(),
                    usize::from(*name) % NAMES.len(),
                );
                let port = PORTS[usize::from(*port) % PORTS.len()];
                // A name the pod never resolved has no address to connect to.
                let Some(first) = answers[p][n].as_ref().map(|ips| ips[0]) else {
                    continue;
                };
                let before = match &last_resolve {
                    Some((rp, rn, before)) if *rp == p && *rn == n => {
                        Some((before, pods[p].selects(NAMES[n])))
                    }
                    _ => None,
                };
                let expect = verdict(&pods[p], first, port, latency, &learned, before);
                let _ = writeln!(
                    y,
                    "  - connect: {{pod: default/client-{p}, name: {}, port: {port}, protocol: TCP}}",
                    NAMES[n]
                );
                write_expect(
                    &mut y,
                    &mut expectations,
                    expect,
                    pods[p].deny == Some(first),
                );
            }
            OpInput::ConnectIp { pod, ip, port } => {
                let p = usize::from(*pod) % pods.len();
                let ip = ip % (OCTETS + 1) + 1;
                let port = PORTS[usize::from(*port) % PORTS.len()];
                let expect = verdict(&pods[p], ip, port, latency, &learned, None);
                let _ = writeln!(
                    y,
                    "  - connect: {{pod: default/client-{p}, ip: 192.0.2.{ip}, port: {port}, protocol: TCP}}"
                );
                write_expect(&mut y, &mut expectations, expect, pods[p].deny == Some(ip));
            }
            OpInput::Advance(s) => {
                let _ = writeln!(
                    y,
                    "  - advance: {}s",
                    ADVANCES_S[usize::from(*s) % ADVANCES_S.len()]
                );
            }
            OpInput::RestartAgent(second) => {
                let _ = writeln!(
                    y,
                    "  - restart-agent: {{node: n{}}}",
                    1 + usize::from(*second && nodes == 2)
                );
            }
            OpInput::UpdateZone { name, records } => {
                let n = usize::from(*name) % NAMES.len();
                let (ips, ttl) = addresses(records);
                y.push_str("  - update-zone:\n");
                zone_records(&mut y, "      ", NAMES[n], &ips, ttl);
                zone[n] = (ips, ttl);
            }
        }
        last_resolve = resolved;
    }
    // A last step, so that a case of skipped connects still has steps.
    y.push_str("  - advance: 1s\n");
    (y, expectations)
}

fn write_expect(y: &mut String, count: &mut usize, verdict: Option<&str>, denied: bool) {
    match verdict {
        Some(v) if denied => {
            let _ = writeln!(y, "    expect: {{verdict: {v}, drop_reason: POLICY_DENY}}");
            *count += 2;
        }
        Some(v) => {
            let _ = writeln!(y, "    expect: {{verdict: {v}}}");
            *count += 1;
        }
        None => {}
    }
}

fuzz_target!(|input: Input| {
    let (yaml, expectations) = scenario(&input);
    let parsed = Scenario::from_str("structured.yaml", &yaml)
        .unwrap_or_else(|e| panic!("{e}\n--- scenario ---\n{yaml}"));
    let run = || {
        Simulation::new(parsed.clone())
            .and_then(Simulation::run)
            .unwrap_or_else(|e| panic!("{e}\n--- scenario ---\n{yaml}"))
    };
    let report = run();
    assert!(
        report.failures.is_empty(),
        "{:#?}\n--- scenario ---\n{yaml}",
        report.failures
    );
    assert_eq!(report.checked, expectations, "--- scenario ---\n{yaml}");
    assert_eq!(report, run(), "not deterministic\n--- scenario ---\n{yaml}");
});
