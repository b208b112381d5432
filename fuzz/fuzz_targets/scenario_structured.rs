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
//! The scenario is built as the value of its document (JSON, which is YAML too), not as YAML
//! text: the YAML parser is covered by the `scenario` target, and here it took most of each
//! run. The pods' policies are YAML, loaded once per distinct text and shared across runs
//! (`ManifestSource`'s cache). A failing input prints its scenario, which `fqdnpath run`
//! reads as it is.
#![no_main]

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::{LazyLock, Mutex};

use arbitrary::Arbitrary;
use fqdnpath_sim::scenario::ManifestSource;
use fqdnpath_sim::{Scenario, Simulation};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

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

fn zone_records(name: &str, ips: &[u8], ttl: u32) -> impl Iterator<Item = Value> {
    ips.iter()
        .map(move |ip| json!({"name": name, "type": "A", "ttl": ttl, "value": format!("192.0.2.{ip}")}))
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
fn scenario(input: &Input) -> (Value, usize) {
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
    let mut cluster_pods = vec![json!({
        "name": "coredns", "namespace": "kube-system", "node": "n1", "ip": "10.0.1.53",
        "labels": {"k8s-app": "kube-dns"}, "dns": {"role": "authoritative"},
    })];
    cluster_pods.extend(pods.iter().enumerate().map(|(i, p)| {
        json!({
            "name": format!("client-{i}"), "namespace": "default",
            "node": format!("n{}", p.node + 1), "ip": format!("10.0.{}.{}", p.node + 1, 10 + i),
            "labels": {"app": format!("client-{i}")},
        })
    }));
    // The oracle's state.
    let mut learned: Learned = vec![BTreeSet::new(); nodes];
    // Per pod and name: the addresses of its last answer.
    let mut answers: Vec<[Option<Vec<u8>>; 4]> = pods.iter().map(|_| Default::default()).collect();
    let mut zone: Vec<(Vec<u8>, u32)> = input.zone.iter().map(addresses).collect();
    let mut expectations = 0;
    let records: Vec<Value> = zone
        .iter()
        .enumerate()
        .flat_map(|(n, (ips, ttl))| zone_records(NAMES[n], ips, *ttl))
        .collect();
    let mut steps: Vec<Value> = Vec::new();
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
                steps.push(json!({
                    "resolve": {"pod": format!("default/client-{p}"), "name": NAMES[n]},
                    "expect": {"verdict": "REDIRECTED", "rcode": "NOERROR", "ips": list},
                }));
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
                let connect = json!({
                    "pod": format!("default/client-{p}"), "name": NAMES[n], "port": port,
                    "protocol": "TCP",
                });
                steps.push(with_expect(
                    json!({"connect": connect}),
                    &mut expectations,
                    expect,
                    pods[p].deny == Some(first),
                ));
            }
            OpInput::ConnectIp { pod, ip, port } => {
                let p = usize::from(*pod) % pods.len();
                let ip = ip % (OCTETS + 1) + 1;
                let port = PORTS[usize::from(*port) % PORTS.len()];
                let expect = verdict(&pods[p], ip, port, latency, &learned, None);
                let connect = json!({
                    "pod": format!("default/client-{p}"), "ip": format!("192.0.2.{ip}"),
                    "port": port, "protocol": "TCP",
                });
                steps.push(with_expect(
                    json!({"connect": connect}),
                    &mut expectations,
                    expect,
                    pods[p].deny == Some(ip),
                ));
            }
            OpInput::Advance(s) => {
                let secs = ADVANCES_S[usize::from(*s) % ADVANCES_S.len()];
                steps.push(json!({"advance": format!("{secs}s")}));
            }
            OpInput::RestartAgent(second) => {
                let node = 1 + usize::from(*second && nodes == 2);
                steps.push(json!({"restart-agent": {"node": format!("n{node}")}}));
            }
            OpInput::UpdateZone { name, records } => {
                let n = usize::from(*name) % NAMES.len();
                let (ips, ttl) = addresses(records);
                let update: Vec<Value> = zone_records(NAMES[n], &ips, ttl).collect();
                steps.push(json!({"update-zone": update}));
                zone[n] = (ips, ttl);
            }
        }
        last_resolve = resolved;
    }
    // A last step, so that a case of skipped connects still has steps.
    steps.push(json!({"advance": "1s"}));
    let node_names: Vec<String> = (1..=nodes).map(|n| format!("n{n}")).collect();
    let manifests: Vec<Value> = pods
        .iter()
        .enumerate()
        .map(|(i, p)| json!({"inline": policy(i, p)}))
        .collect();
    let scenario = json!({
        "apiVersion": "fqdnpath/v1",
        "kind": "Scenario",
        "name": "structured",
        "agent": {"tofqdns-proxy-response-max-delay": format!("{MAX_DELAY_MS}ms")},
        "datapath": {"update-latency": format!("{latency}ms")},
        "cluster": {
            "nodes": node_names,
            "pods": cluster_pods,
            "services": [{
                "name": "kube-dns", "namespace": "kube-system", "clusterIP": "10.96.0.10",
                "selector": {"k8s-app": "kube-dns"},
                "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}],
            }],
        },
        "manifests": manifests,
        "zone": records,
        "steps": steps,
    });
    (scenario, expectations)
}

/// The step with the oracle's expectation, if it fixes one; counts the checks it makes.
fn with_expect(mut step: Value, count: &mut usize, verdict: Option<&str>, denied: bool) -> Value {
    match verdict {
        Some(v) if denied => {
            step["expect"] = json!({"verdict": v, "drop_reason": "POLICY_DENY"});
            *count += 2;
        }
        Some(v) => {
            step["expect"] = json!({"verdict": v});
            *count += 1;
        }
        None => {}
    }
    step
}

// Runs allocate a lot (labels, policies, caches); mimalloc makes this target half again as
// fast as the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The pods' policies, loaded once per text: there are a few thousand, and loading one
/// (YAML, validation) costs more than the rest of a run.
static POLICIES: LazyLock<Mutex<HashMap<String, ManifestSource>>> = LazyLock::new(Mutex::default);

fn loaded_once(source: &ManifestSource) -> ManifestSource {
    let Some(text) = &source.inline else {
        return source.clone();
    };
    let mut policies = POLICIES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if policies.len() > 100_000 {
        policies.clear();
    }
    policies.entry(text.clone()).or_insert_with(|| source.clone()).clone()
}

fuzz_target!(|input: Input| {
    let (value, expectations) = scenario(&input);
    let shown = || serde_json::to_string_pretty(&value).unwrap_or_default();
    let mut parsed = Scenario::from_value("structured.yaml", value.clone())
        .unwrap_or_else(|e| panic!("{e}\n--- scenario ---\n{}", shown()));
    parsed.manifests = parsed.manifests.iter().map(loaded_once).collect();
    let run = || {
        Simulation::new(parsed.clone())
            .and_then(Simulation::run)
            .unwrap_or_else(|e| panic!("{e}\n--- scenario ---\n{}", shown()))
    };
    let report = run();
    assert!(
        report.failures.is_empty(),
        "{:#?}\n--- scenario ---\n{}",
        report.failures,
        shown()
    );
    assert_eq!(report.checked, expectations, "--- scenario ---\n{}", shown());
    assert_eq!(report, run(), "not deterministic\n--- scenario ---\n{}", shown());
});
