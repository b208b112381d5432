//! The simulator: a small cluster on a virtual clock, one agent and one reference datapath per
//! node, real DNS wire messages between pods, proxy and servers.
//!
//! A `resolve` walks the real path: the pod's query to the kube-dns `ClusterIP` is translated
//! (Local Redirect Policy first), judged by the client node's egress policy, handed to the
//! DNS proxy when the matching entry redirects (which enforces `rules.dns`), answered by the
//! DNS server pod (a node-local cache forwards its misses upstream), observed and learned by
//! the agent, and released to the pod once the datapath holds the new entries, or after
//! `tofqdns-proxy-response-max-delay`. Time then stands at the release.
//!
//! Background jobs run when due as time moves: pending map changes, the connection-tracking
//! GC (every `conntrack-gc-interval`), then the DNS GC (every 60 s). Everything is
//! deterministic: the same scenario gives the same flows.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use fqdnpath_agent::{Agent, AgentConfig, QueryDecision, RejectCode, hold};
use fqdnpath_cache::hickory_proto::op::ResponseCode;
use fqdnpath_cache::hickory_proto::rr::RecordType;
use fqdnpath_cache::wire::ResponseBuilder;
use fqdnpath_cache::{DNS_GC_INTERVAL, EndpointId, FqdnConfig, Timestamp, observe};
use fqdnpath_datapath::conntrack::TcpFlags;
use fqdnpath_datapath::service::{LocalRedirect, Pod, Service, ServicePort, ServiceTable};
use fqdnpath_datapath::{Datapath, FlowEvent, Packet, ReferenceDatapath, Verdict};
use fqdnpath_policy::compile::{Compiler, Delta, Endpoint, Prefix};
use fqdnpath_policy::identity::Identity;
use fqdnpath_policy::labels::Labels;
use fqdnpath_policy::manifest::{LocalRedirectPolicy, NetworkPolicy, port_protocol};
use fqdnpath_policy::policymap::{MatchType, PROTO_TCP, PROTO_UDP, PolicyAction, PolicyKey};
use fqdnpath_policy::{Manifest, load_file};

use crate::scenario::{
    DnsMode, DnsRoleKind, Expect, ManifestSource, RejectResponseCode, Scenario, ScenarioError,
    Step, ZoneRecord,
};

/// A caching DNS server's answers: (name, type) -> (stored at, expiry, wire response).
type CachedAnswers = BTreeMap<(String, u16), (Timestamp, Timestamp, Vec<u8>)>;

/// The longest virtual time a scenario may span: 366 days.
pub const MAX_SCENARIO_TIME: Duration = Duration::from_secs(366 * 86_400);

/// A pod in the simulation.
#[derive(Clone, Debug)]
struct SimPod {
    namespace: String,
    name: String,
    node: String,
    ip: IpAddr,
    labels: BTreeMap<String, String>,
    dns: Option<(DnsRoleKind, Option<String>)>,
    endpoint: u16,
}

impl SimPod {
    fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

struct NodeState {
    agent: Agent,
    datapath: Box<dyn Datapath>,
    /// Map changes waiting for the update latency: (when they land, changes), in order.
    pending: Vec<(Timestamp, Pending)>,
}

/// A change on its way to a node's datapath.
enum Pending {
    /// Map changes, applied as they are.
    Deltas(Vec<Delta>),
    /// A rebuilt (or restarted) agent's maps: the datapath is brought to them from whatever
    /// it holds when they land, as the new agent syncs the maps it finds. The difference is
    /// taken then, not when the agent was rebuilt: changes still on their way at that moment
    /// land first, and an entry they add must not outlive the sync.
    Sync(Target),
}

/// What a compiler holds for one node: the ipcache and the local endpoints' policy maps.
struct Target {
    ipcache: BTreeMap<Prefix, Identity>,
    policies: Vec<(u16, BTreeMap<PolicyKey, PolicyAction>)>,
}

/// One line of output: a flow or a DNS answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// When.
    pub time: Timestamp,
    /// The text, in the style of `hubble observe`.
    pub text: String,
    /// The same event as `hubble observe -o json` prints it:
    /// `{"flow": {...}, "node_name": ..., "time": ...}`; `null` unless the simulation was
    /// made [`Simulation::with_json`].
    pub json: serde_json::Value,
}

/// An expectation that did not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The step's index.
    pub step: usize,
    /// What was expected and what happened.
    pub message: String,
}

/// The result of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The flows and answers, in order.
    pub lines: Vec<Line>,
    /// Expectations checked.
    pub checked: usize,
    /// Those that failed.
    pub failures: Vec<Failure>,
}

/// What happened at a step, for its expectations.
#[derive(Clone, Debug, Default)]
struct Observed {
    rcode: Option<String>,
    ips: Option<Vec<IpAddr>>,
    verdict: Option<Verdict>,
    drop_reason: Option<String>,
    held: Option<Duration>,
    identity: Option<u32>,
    match_type: Option<MatchType>,
}

/// Makes a node's datapath, given the node's name.
pub type DatapathFactory<'a> = dyn FnMut(&str) -> Result<Box<dyn Datapath>, String> + 'a;

/// A running simulation.
pub struct Simulation {
    scenario: Scenario,
    now: Timestamp,
    pods: Vec<SimPod>,
    services: Vec<Service>,
    table: ServiceTable,
    nodes: BTreeMap<String, NodeState>,
    zone: BTreeMap<String, Vec<ZoneRecord>>,
    dns_caches: BTreeMap<IpAddr, CachedAnswers>,
    connections: BTreeMap<String, (String, Packet)>,
    answers: BTreeMap<(String, String), Vec<IpAddr>>,
    next_port: u16,
    next_id: u16,
    next_ct_gc: Timestamp,
    next_dns_gc: Timestamp,
    report: Report,
    policies: Vec<NetworkPolicy>,
    lrps: Vec<LocalRedirectPolicy>,
    /// Whether lines carry their Hubble JSON (built only when asked for: it costs more than
    /// the step itself).
    json_output: bool,
}

fn invalid(scenario: &Scenario, path: String, reason: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid {
        file: scenario.file.clone(),
        path,
        reason: reason.into(),
    }
}

/// The scenario's clock: t=0 is 2026-11-29 16:00:00 UTC. Returns (year, month, day, hour,
/// minute, second, nanosecond).
fn civil(t: Timestamp) -> (u64, u64, u64, u64, u64, u64, u64) {
    const DAYS: [u64; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let nanos = t.as_nanos();
    let total = 16 * 3600 + nanos / 1_000_000_000;
    let (mut year, mut month, mut day) = (2026u64, 11u64, 29 + total / 86_400);
    loop {
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let len = DAYS[usize::try_from(month - 1).unwrap_or(0)] + u64::from(month == 2 && leap);
        if day <= len {
            break;
        }
        day -= len;
        month += 1;
        if month > 12 {
            month = 1;
            year += 1;
        }
    }
    let in_day = total % 86_400;
    (
        year,
        month,
        day,
        in_day / 3600,
        (in_day / 60) % 60,
        in_day % 60,
        nanos % 1_000_000_000,
    )
}

/// The time as `hubble observe` prints it: `Nov 29 16:00:00.000`.
fn clock(t: Timestamp) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (_, month, day, h, m, sec, nanos) = civil(t);
    let name = MONTHS[usize::try_from(month - 1).unwrap_or(0)];
    format!(
        "{name} {day:02} {h:02}:{m:02}:{sec:02}.{:03}",
        nanos / 1_000_000
    )
}

/// The time as Hubble's JSON writes it (RFC 3339).
fn rfc3339(t: Timestamp) -> String {
    let (year, month, day, h, m, sec, nanos) = civil(t);
    format!("{year}-{month:02}-{day:02}T{h:02}:{m:02}:{sec:02}.{nanos:09}Z")
}

impl Simulation {
    /// Builds the cluster of `scenario`: pods and `DaemonSet` pods, services, manifests, agents
    /// and datapaths. Invalid input is a [`ScenarioError`] naming the file and key.
    pub fn new(scenario: Scenario) -> Result<Self, ScenarioError> {
        Self::with_datapaths(scenario, &mut |_| {
            Ok(Box::new(ReferenceDatapath::default()))
        })
    }

    /// Builds the cluster as [`Simulation::new`] does, with the datapath of each node made by
    /// `factory` (given the node's name): the kernel backend, for instance, which must then
    /// give every flow the model's verdict. A factory error is an input error about the
    /// cluster.
    #[expect(
        clippy::too_many_lines,
        reason = "one pass over the cluster spec, in the order it is built"
    )]
    pub fn with_datapaths(
        scenario: Scenario,
        factory: &mut DatapathFactory<'_>,
    ) -> Result<Self, ScenarioError> {
        let mut pods = Vec::new();
        for (i, p) in scenario.cluster.pods.iter().enumerate() {
            if !scenario.cluster.nodes.contains(&p.node) {
                return Err(invalid(
                    &scenario,
                    format!("cluster.pods[{i}].node"),
                    format!("no node {:?} in cluster.nodes", p.node),
                ));
            }
            pods.push(SimPod {
                namespace: p.namespace.clone(),
                name: p.name.clone(),
                node: p.node.clone(),
                ip: p.ip,
                labels: p.labels.clone(),
                dns: p.dns.as_ref().map(|d| (d.role, d.upstream.clone())),
                endpoint: 0,
            });
        }
        for ds in &scenario.cluster.daemonsets {
            for (n, node) in scenario.cluster.nodes.iter().enumerate() {
                // One pod per node, from the node's pod range 10.<n+1>.0.0/16's top addresses.
                let third = u8::try_from(n + 1).unwrap_or(u8::MAX);
                let used = pods.iter().filter(|p| p.node == *node).count();
                let last = 250u8.saturating_sub(u8::try_from(used).unwrap_or(0));
                pods.push(SimPod {
                    namespace: ds.namespace.clone(),
                    name: format!("{}-{node}", ds.name),
                    node: node.clone(),
                    ip: IpAddr::from([10, 0, third, last]),
                    labels: ds.labels.clone(),
                    dns: ds.dns.as_ref().map(|d| (d.role, d.upstream.clone())),
                    endpoint: 0,
                });
            }
        }
        let mut seen = BTreeSet::new();
        for (i, p) in pods.iter_mut().enumerate() {
            if !seen.insert(p.ip) {
                return Err(invalid(
                    &scenario,
                    "cluster.pods".into(),
                    format!("IP {} is used twice", p.ip),
                ));
            }
            p.endpoint = u16::try_from(i + 1).unwrap_or(u16::MAX);
        }
        let mut services = Vec::new();
        for (i, s) in scenario.cluster.services.iter().enumerate() {
            let mut ports = Vec::new();
            for (k, p) in s.ports.iter().enumerate() {
                let Some(proto) = port_protocol(&p.protocol) else {
                    return Err(invalid(
                        &scenario,
                        format!("cluster.services[{i}].ports[{k}].protocol"),
                        format!("unknown protocol {:?}", p.protocol),
                    ));
                };
                ports.push(ServicePort {
                    name: p.name.clone(),
                    port: p.port,
                    proto,
                    target_port: p.target_port.unwrap_or(p.port),
                });
            }
            let backends = pods
                .iter()
                .filter(|p| {
                    p.namespace == s.namespace
                        && !s.selector.is_empty()
                        && s.selector.iter().all(|(k, v)| p.labels.get(k) == Some(v))
                })
                .map(|p| p.ip)
                .collect();
            services.push(Service {
                namespace: s.namespace.clone(),
                name: s.name.clone(),
                cluster_ip: s.cluster_ip,
                ports,
                backends,
            });
        }
        let mut zone: BTreeMap<String, Vec<ZoneRecord>> = BTreeMap::new();
        for (i, r) in scenario.zone.iter().enumerate() {
            check_record(&scenario, &format!("zone[{i}]"), r)?;
            zone.entry(fqdnpath_names::normalize(&r.name).into_owned())
                .or_default()
                .push(r.clone());
        }
        let mut sim = Self {
            now: Timestamp::ZERO,
            pods,
            services,
            table: ServiceTable::default(),
            nodes: BTreeMap::new(),
            zone,
            dns_caches: BTreeMap::new(),
            connections: BTreeMap::new(),
            answers: BTreeMap::new(),
            next_port: 40_000,
            next_id: 1,
            next_ct_gc: Timestamp::ZERO + scenario.agent.conntrack_gc_interval.0,
            next_dns_gc: Timestamp::ZERO + DNS_GC_INTERVAL,
            report: Report::default(),
            policies: Vec::new(),
            lrps: Vec::new(),
            json_output: false,
            scenario,
        };
        let (policies, lrps) = sim.load_manifests()?;
        sim.policies = policies;
        sim.lrps = lrps;
        sim.build(factory)?;
        Ok(sim)
    }

    fn load_manifests(
        &self,
    ) -> Result<(Vec<NetworkPolicy>, Vec<LocalRedirectPolicy>), ScenarioError> {
        let mut policies = Vec::new();
        let mut lrps = Vec::new();
        for (i, source) in self.scenario.manifests.iter().enumerate() {
            let loaded = self.load_source(&format!("manifests[{i}]"), source)?;
            for m in loaded {
                match m {
                    Manifest::NetworkPolicy(p) => policies.push(p),
                    Manifest::LocalRedirectPolicy(l) => lrps.push(l),
                    _ => {}
                }
            }
        }
        Ok((policies, lrps))
    }

    fn load_source(
        &self,
        path: &str,
        source: &ManifestSource,
    ) -> Result<Vec<Manifest>, ScenarioError> {
        let loaded = match (&source.path, &source.inline) {
            (Some(p), _) => load_file(&self.scenario.base.join(p))
                .map(|l| l.manifests.into_iter().map(|m| m.value).collect())
                .map_err(|e| e.to_string()),
            (None, Some(text)) => {
                source.load_inline(&format!("{} ({path}.inline)", self.scenario.file), text)
            }
            (None, None) => Err("set path or inline".to_owned()),
        };
        loaded.map_err(|reason| invalid(&self.scenario, path.to_owned(), reason))
    }

    fn agent_config(&self) -> AgentConfig {
        let flags = &self.scenario.agent;
        AgentConfig {
            fqdn: FqdnConfig::new(
                flags.tofqdns_min_ttl,
                flags.tofqdns_endpoint_max_ip_per_hostname,
                flags.tofqdns_max_deferred_connection_deletes,
                flags.tofqdns_idle_connection_grace_period.0,
            ),
            proxy_response_max_delay: flags.tofqdns_proxy_response_max_delay.0,
            reject_code: match flags.tofqdns_dns_reject_response_code {
                RejectResponseCode::Refused => RejectCode::Refused,
                RejectResponseCode::NameError => RejectCode::NameError,
            },
        }
    }

    fn endpoints(&self) -> Vec<Endpoint> {
        self.pods
            .iter()
            .map(|p| Endpoint {
                id: p.endpoint,
                namespace: p.namespace.clone(),
                name: p.name.clone(),
                labels: p.labels.clone(),
                ips: vec![p.ip],
            })
            .collect()
    }

    fn rebuild_services(&mut self) {
        let sim_pods: Vec<Pod> = self
            .pods
            .iter()
            .map(|p| Pod {
                ip: p.ip,
                node: p.node.clone(),
                namespace: p.namespace.clone(),
                labels: Labels::pod(&p.namespace, &p.labels),
            })
            .collect();
        self.table = ServiceTable::new(
            self.services.clone(),
            self.lrps
                .iter()
                .map(|l| LocalRedirect::new(l, &sim_pods))
                .collect(),
        );
    }

    /// The starting state: every node's agent compiled and its datapath programmed at t=0.
    fn build(&mut self, factory: &mut DatapathFactory<'_>) -> Result<(), ScenarioError> {
        self.rebuild_services();
        let config = self.agent_config();
        let endpoints = self.endpoints();
        for node in &self.scenario.cluster.nodes {
            let agent = Agent::new(config, &self.policies, &endpoints)
                .map_err(|e| invalid(&self.scenario, "manifests".into(), e.to_string()))?;
            let mut datapath = factory(node).map_err(|e| {
                invalid(
                    &self.scenario,
                    "cluster.nodes".into(),
                    format!("datapath for {node}: {e}"),
                )
            })?;
            let local: BTreeSet<u16> = self
                .pods
                .iter()
                .filter(|p| &p.node == node)
                .map(|p| p.endpoint)
                .collect();
            datapath
                .program(agent.compiler(), &|id| local.contains(&id))
                .map_err(|e| invalid(&self.scenario, "cluster".into(), e.to_string()))?;
            self.nodes.insert(
                node.clone(),
                NodeState {
                    agent,
                    datapath,
                    pending: Vec::new(),
                },
            );
        }
        Ok(())
    }

    /// Recompiles the agents of `only` (or of every node) under the current policies; each
    /// keeps its caches (exactly, or as after a restart). After the update latency the
    /// datapath is brought to what the new agent compiled, from what it holds then (changes
    /// still on their way when the agent was rebuilt land first).
    fn rebuild_agents(&mut self, only: Option<&str>, restart: bool) -> Result<(), String> {
        let config = self.agent_config();
        let endpoints = self.endpoints();
        let latency = self.scenario.datapath.update_latency.0;
        let now = self.now;
        for (name, node) in &mut self.nodes {
            if only.is_some_and(|o| o != name) {
                continue;
            }
            let snapshot = node.agent.snapshot();
            let mut agent =
                Agent::new(config, &self.policies, &endpoints).map_err(|e| e.to_string())?;
            if restart {
                agent.restart(&snapshot).map_err(|e| e.to_string())?;
            } else {
                agent.adopt(&snapshot).map_err(|e| e.to_string())?;
            }
            let local: Vec<u16> = self
                .pods
                .iter()
                .filter(|p| &p.node == name)
                .map(|p| p.endpoint)
                .collect();
            let target = Target::of(agent.compiler(), &local);
            node.agent = agent;
            node.pending.push((now + latency, Pending::Sync(target)));
        }
        self.apply_pending();
        Ok(())
    }

    fn pod(&self, key: &str) -> Option<&SimPod> {
        self.pods.iter().find(|p| p.key() == key)
    }

    fn describe(&self, ip: IpAddr) -> String {
        self.pods
            .iter()
            .find(|p| p.ip == ip)
            .map_or_else(|| ip.to_string(), SimPod::key)
    }

    /// Moves time to `to`, running every background job that falls due on the way.
    fn advance_to(&mut self, to: Timestamp) {
        loop {
            let pending = self
                .nodes
                .values()
                .flat_map(|n| n.pending.iter().map(|(t, _)| *t))
                .min();
            let next = [Some(self.next_ct_gc), Some(self.next_dns_gc), pending]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next.filter(|t| *t <= to) else {
                break;
            };
            self.now = self.now.max(next);
            self.apply_pending();
            if self.next_ct_gc <= next {
                for node in self.nodes.values_mut() {
                    let live = node.datapath.conntrack_gc(next);
                    let live: Vec<(EndpointId, IpAddr)> = live
                        .into_iter()
                        .map(|(e, ip)| (EndpointId(e), ip))
                        .collect();
                    node.agent.ct_gc(next, &live);
                }
                self.next_ct_gc = next
                    + self
                        .scenario
                        .agent
                        .conntrack_gc_interval
                        .0
                        .max(Duration::from_secs(1));
            }
            if self.next_dns_gc <= next {
                let latency = self.scenario.datapath.update_latency.0;
                for node in self.nodes.values_mut() {
                    if let Ok((_, deltas)) = node.agent.dns_gc(next) {
                        node.pending.push((next + latency, Pending::Deltas(deltas)));
                    }
                }
                self.next_dns_gc = next + DNS_GC_INTERVAL;
                self.apply_pending();
            }
        }
        self.now = self.now.max(to);
        self.apply_pending();
    }

    fn apply_pending(&mut self) {
        let now = self.now;
        for node in self.nodes.values_mut() {
            let (due, later): (Vec<_>, Vec<_>) =
                node.pending.drain(..).partition(|(t, _)| *t <= now);
            node.pending = later;
            for (_, change) in due {
                let deltas = match change {
                    Pending::Deltas(deltas) => deltas,
                    Pending::Sync(target) => target.deltas_from(node.datapath.as_ref()),
                };
                let _ = node.datapath.apply(&deltas);
            }
        }
    }

    /// Hubble's view of one end of a flow.
    fn endpoint_json(&self, node: &str, ip: IpAddr, identity: u32) -> serde_json::Value {
        let labels: Vec<String> = self
            .nodes
            .get(node)
            .and_then(|n| n.agent.compiler().identity_labels(Identity(identity)))
            .map(|l| l.iter().map(ToString::to_string).collect())
            .unwrap_or_default();
        match self.pods.iter().find(|p| p.ip == ip) {
            Some(p) => serde_json::json!({
                "ID": p.endpoint,
                "identity": identity,
                "namespace": p.namespace,
                "pod_name": p.name,
                "labels": labels,
            }),
            None => serde_json::json!({"identity": identity, "labels": labels}),
        }
    }

    fn flow_line(&mut self, node: &str, event: &FlowEvent) {
        let p = &event.packet;
        let proto = if p.proto == PROTO_UDP { "UDP" } else { "TCP" };
        let verdict = match event.verdict {
            Verdict::Dropped => format!(
                "policy-verdict:{} EGRESS DENIED ({proto}) DROPPED (Policy denied)",
                MatchType::verdict_label(event.match_type)
            ),
            Verdict::Forwarded if event.is_reply => format!("to-endpoint FORWARDED ({proto})"),
            Verdict::Forwarded => format!(
                "policy-verdict:{} EGRESS ALLOWED ({proto}) FORWARDED",
                MatchType::verdict_label(event.match_type)
            ),
            Verdict::Redirected => format!(
                "policy-verdict:{} EGRESS ALLOWED ({proto}) REDIRECTED (to-proxy)",
                MatchType::verdict_label(event.match_type)
            ),
        };
        let verdict = if event.drop_reason.is_some_and(|r| r.desc() == "POLICY_DENY") {
            verdict.replace(
                "DROPPED (Policy denied)",
                "DROPPED (Policy denied by denylist)",
            )
        } else {
            verdict
        };
        let text = format!(
            "{} {}:{} (ID:{}) -> {}:{} (ID:{}) {verdict}",
            clock(event.time),
            self.describe(p.src),
            p.sport,
            event.src_identity,
            self.describe(p.dst),
            p.dport,
            event.dst_identity,
        );
        let json = if self.json_output {
            let names: Vec<String> = self
                .nodes
                .get(node)
                .map(|n| {
                    n.agent
                        .caches()
                        .global_names(p.dst)
                        .iter()
                        .map(|f| f.as_str().trim_end_matches('.').to_owned())
                        .collect()
                })
                .unwrap_or_default();
            let mut flow = serde_json::json!({
                "time": rfc3339(event.time),
                "verdict": event.verdict.name(),
                "Type": "L3_L4",
                "node_name": node,
                "event_type": {"type": if event.verdict == Verdict::Dropped { 1 } else { 5 }},
                "traffic_direction": "EGRESS",
                "is_reply": event.is_reply,
                "IP": {
                    "source": p.src.to_string(),
                    "destination": p.dst.to_string(),
                    "ipVersion": if p.src.is_ipv4() { "IPv4" } else { "IPv6" },
                },
                "l4": {proto: {"source_port": p.sport, "destination_port": p.dport}},
                "source": self.endpoint_json(node, p.src, event.src_identity.0),
                "destination": self.endpoint_json(node, p.dst, event.dst_identity.0),
                "destination_names": names,
                "policy_match_type": event.match_type.map_or(0, |m| m as u8),
            });
            if let Some(reason) = event.drop_reason {
                flow["drop_reason"] = serde_json::json!(reason as u8);
                flow["drop_reason_desc"] = serde_json::json!(reason.desc());
            }
            serde_json::json!({"flow": flow, "node_name": node, "time": rfc3339(event.time)})
        } else {
            serde_json::Value::Null
        };
        self.report.lines.push(Line {
            time: event.time,
            text,
            json,
        });
    }

    fn egress(&mut self, node: &str, packet: &Packet) -> FlowEvent {
        self.apply_pending();
        let now = self.now;
        let event = match self.nodes.get_mut(node) {
            Some(n) => n.datapath.egress(packet, now),
            None => unreachable_event(packet, now),
        };
        self.flow_line(node, &event);
        event
    }

    /// Makes every line carry its Hubble JSON ([`Line::json`]); off by default.
    #[must_use]
    pub fn with_json(mut self, on: bool) -> Self {
        self.json_output = on;
        self
    }

    /// Runs every step and returns the report.
    pub fn run(mut self) -> Result<Report, ScenarioError> {
        self.run_steps(usize::MAX)?;
        Ok(self.report)
    }

    /// Runs the first `count` steps.
    fn run_steps(&mut self, count: usize) -> Result<(), ScenarioError> {
        let steps = self.scenario.steps.clone();
        for (i, step) in steps.iter().enumerate().take(count) {
            if let Some(at) = step.at {
                self.check_horizon(&format!("steps[{i}].at"), Timestamp::ZERO + at.0)?;
                self.advance_to(Timestamp::ZERO + at.0);
            }
            let observed = self.step(i, step)?;
            if let Some(expect) = &step.expect {
                self.check(i, expect, &observed);
            }
        }
        Ok(())
    }

    /// Refuses to move the clock past [`MAX_SCENARIO_TIME`]: every minute of virtual time runs
    /// the GC jobs, so a typo such as `advance: 100000h` would otherwise run for hours.
    fn check_horizon(&self, path: &str, to: Timestamp) -> Result<(), ScenarioError> {
        if to > Timestamp::ZERO + MAX_SCENARIO_TIME {
            return Err(invalid(
                &self.scenario,
                path.to_owned(),
                format!(
                    "this would take the scenario past {} days of virtual time, the most it simulates",
                    MAX_SCENARIO_TIME.as_secs() / 86_400
                ),
            ));
        }
        Ok(())
    }

    /// `fqdnpath explain`: runs the first `after_steps` steps, then explains, without sending
    /// anything, the verdict a packet from `pod` to `to` (an IP, or a name the pod resolved)
    /// on `port`/`protocol` would get: the translation, the DNS cache entries and zombies
    /// behind the destination's identity, the ipcache entry, and the rules behind the policy
    /// entry that decides.
    #[expect(
        clippy::too_many_lines,
        reason = "the explanation, in the order a reader follows it"
    )]
    pub fn explain(
        mut self,
        after_steps: usize,
        pod: &str,
        to: &str,
        port: u16,
        protocol: &str,
    ) -> Result<Vec<String>, ScenarioError> {
        self.run_steps(after_steps)?;
        self.apply_pending();
        let bad = |path: &str, reason: String| ScenarioError::Invalid {
            file: self.scenario.file.clone(),
            path: path.to_owned(),
            reason,
        };
        let Some(p) = self.pod(pod).cloned() else {
            return Err(bad("--pod", format!("no pod {pod}")));
        };
        let proto = match protocol.to_ascii_uppercase().as_str() {
            "TCP" => PROTO_TCP,
            "UDP" => PROTO_UDP,
            other => return Err(bad("--protocol", format!("{other} is not TCP or UDP"))),
        };
        let mut out = Vec::new();
        let node = &self.nodes[&p.node];
        let compiler = node.agent.compiler();
        let own = compiler.endpoint_identity(p.endpoint).map_or(0, |i| i.0);
        out.push(format!(
            "at {}: pod {} on {}, endpoint {}, identity {own}",
            clock(self.now),
            p.key(),
            p.node,
            p.endpoint
        ));
        let dst: IpAddr = if let Ok(ip) = to.parse() {
            ip
        } else {
            let name = fqdnpath_names::normalize(to).into_owned();
            let Some(ip) = self
                .answers
                .get(&(p.key(), name.clone()))
                .and_then(|a| a.first())
            else {
                return Err(bad(
                    "--to",
                    format!("{pod} has no answer for {name} at this point"),
                ));
            };
            out.push(format!(
                "{name} -> {ip} (the first address of the pod's last answer)"
            ));
            *ip
        };
        let (dst, port) = match self.table.translate(p.ip, &p.node, dst, proto, port, 0) {
            Some(t) => {
                out.push(format!(
                    "{dst}:{port} is translated to {}:{} ({:?})",
                    t.ip, t.port, t.via
                ));
                (t.ip, t.port)
            }
            None => (dst, port),
        };
        let identity = node.datapath.identity_of(dst);
        let prefix = compiler
            .ipcache()
            .iter()
            .filter(|(pre, _)| pre.contains_prefix(&Prefix::host(dst)))
            .max_by_key(|(pre, _)| pre.len);
        let labels = compiler
            .identity_labels(identity)
            .map(ToString::to_string)
            .unwrap_or_default();
        match prefix {
            Some((pre, _)) => out.push(format!(
                "ipcache: {dst} -> {pre} -> identity {identity} [{labels}]"
            )),
            None => out.push(format!(
                "ipcache: no entry holds {dst}: identity {identity} [{labels}]"
            )),
        }
        for (endpoint, dns) in node.agent.caches().endpoints() {
            for name in dns.cache.names_of(dst) {
                if let Some(e) = dns.cache.get(name, dst) {
                    let state = if e.is_valid_at(self.now) {
                        "valid"
                    } else {
                        "expired, until the next DNS GC"
                    };
                    out.push(format!(
                        "DNS cache of endpoint {endpoint}: {name} -> {dst}, ttl {} s, expires {} ({state})",
                        e.ttl,
                        clock(e.expiry)
                    ));
                }
            }
            if let Some(z) = dns.zombies.get(dst) {
                let names: Vec<&str> = z.names.iter().map(fqdnpath_names::Fqdn::as_str).collect();
                out.push(format!(
                    "zombie of endpoint {endpoint}: {dst} [{}], pending since {}; it keeps the identity while a connection may use it",
                    names.join(","),
                    clock(z.delete_pending_at)
                ));
            }
        }
        let (selecting, default_deny) = compiler.selecting(p.endpoint);
        if selecting.is_empty() {
            out.push("no policy selects the pod: egress is not restricted".into());
        } else {
            out.push(format!(
                "egress rules selecting the pod: {}",
                selecting.join("; ")
            ));
            out.push(format!(
                "default deny: {}",
                if default_deny { "yes" } else { "no" }
            ));
        }
        out.extend(verdict_lines(compiler, p.endpoint, identity, proto, port));
        Ok(out)
    }

    #[expect(
        clippy::too_many_lines,
        reason = "one arm per step kind, each checking its inputs"
    )]
    fn step(&mut self, i: usize, step: &Step) -> Result<Observed, ScenarioError> {
        let path = format!("steps[{i}]");
        if let Some(d) = step.advance {
            self.check_horizon(&format!("{path}.advance"), self.now + d.0)?;
            self.advance_to(self.now + d.0);
            return Ok(Observed::default());
        }
        if let Some(r) = &step.resolve {
            let Some(pod) = self.pod(&r.pod).cloned() else {
                return Err(invalid(
                    &self.scenario,
                    format!("{path}.resolve.pod"),
                    format!("no pod {}", r.pod),
                ));
            };
            let qtype = match r.kind.as_deref().unwrap_or("A") {
                "A" => RecordType::A,
                "AAAA" => RecordType::AAAA,
                other => {
                    return Err(invalid(
                        &self.scenario,
                        format!("{path}.resolve.type"),
                        format!("{other} is not A or AAAA"),
                    ));
                }
            };
            return Ok(self.resolve(&pod, &r.name, qtype));
        }
        if let Some(c) = &step.connect {
            let Some(pod) = self.pod(&c.pod).cloned() else {
                return Err(invalid(
                    &self.scenario,
                    format!("{path}.connect.pod"),
                    format!("no pod {}", c.pod),
                ));
            };
            let dst = match (c.ip, &c.name) {
                (Some(ip), _) => ip,
                (None, Some(name)) => {
                    let key = (pod.key(), fqdnpath_names::normalize(name).into_owned());
                    match self.answers.get(&key).and_then(|ips| ips.first()) {
                        Some(ip) => *ip,
                        None => {
                            return Err(invalid(
                                &self.scenario,
                                format!("{path}.connect.name"),
                                format!("{} got no address for {name} before", c.pod),
                            ));
                        }
                    }
                }
                (None, None) => {
                    return Err(invalid(
                        &self.scenario,
                        format!("{path}.connect"),
                        "set ip or name",
                    ));
                }
            };
            let proto = match c.protocol.to_ascii_uppercase().as_str() {
                "TCP" => PROTO_TCP,
                "UDP" => PROTO_UDP,
                other => {
                    return Err(invalid(
                        &self.scenario,
                        format!("{path}.connect.protocol"),
                        format!("{other} is not TCP or UDP"),
                    ));
                }
            };
            return Ok(self.connect(&pod, dst, c.port, proto, c.alias.clone()));
        }
        if let Some(r) = &step.send {
            let Some((node, packet)) = self.connections.get(&r.connection).cloned() else {
                return Err(invalid(
                    &self.scenario,
                    format!("{path}.send.connection"),
                    format!("no open connection {:?}", r.connection),
                ));
            };
            let event = self.egress(&node, &packet);
            return Ok(observed_of(&event));
        }
        if let Some(r) = &step.close {
            let Some((node, packet)) = self.connections.remove(&r.connection) else {
                return Err(invalid(
                    &self.scenario,
                    format!("{path}.close.connection"),
                    format!("no open connection {:?}", r.connection),
                ));
            };
            let fin = Packet {
                flags: TcpFlags {
                    fin: true,
                    ..TcpFlags::default()
                },
                ..packet
            };
            let event = self.egress(&node, &fin);
            return Ok(observed_of(&event));
        }
        self.change_step(&path, step)
    }

    /// The steps that change the cluster: `apply`, `delete`, `restart-agent`, `update-zone`.
    fn change_step(&mut self, path: &str, step: &Step) -> Result<Observed, ScenarioError> {
        if let Some(source) = &step.apply {
            let manifests = self.load_source(&format!("{path}.apply"), source)?;
            for m in manifests {
                match m {
                    Manifest::NetworkPolicy(p) => {
                        self.policies.retain(|q| {
                            !(q.kind == p.kind
                                && q.metadata.name == p.metadata.name
                                && q.metadata.namespace == p.metadata.namespace)
                        });
                        self.policies.push(p);
                    }
                    Manifest::LocalRedirectPolicy(l) => {
                        self.lrps.retain(|q| {
                            !(q.metadata.name == l.metadata.name
                                && q.metadata.namespace == l.metadata.namespace)
                        });
                        self.lrps.push(l);
                    }
                    _ => {}
                }
            }
            self.rebuild_services();
            self.rebuild_agents(None, false)
                .map_err(|e| invalid(&self.scenario, format!("{path}.apply"), e))?;
            return Ok(Observed::default());
        }
        if let Some(d) = &step.delete {
            let namespace = d.namespace.clone().unwrap_or_else(|| "default".into());
            let before = self.policies.len() + self.lrps.len();
            self.policies.retain(|p| {
                !(p.kind == d.kind
                    && p.metadata.name == d.name
                    && (p.is_clusterwide()
                        || p.metadata.namespace.as_deref() == Some(namespace.as_str())))
            });
            self.lrps.retain(|l| {
                !(l.kind == d.kind
                    && l.metadata.name == d.name
                    && l.metadata.namespace.as_deref() == Some(namespace.as_str()))
            });
            if before == self.policies.len() + self.lrps.len() {
                return Err(invalid(
                    &self.scenario,
                    format!("{path}.delete"),
                    format!("no {} {namespace}/{} to delete", d.kind, d.name),
                ));
            }
            self.rebuild_services();
            self.rebuild_agents(None, false)
                .map_err(|e| invalid(&self.scenario, format!("{path}.delete"), e))?;
            return Ok(Observed::default());
        }
        if let Some(r) = &step.restart_agent {
            if !self.nodes.contains_key(&r.node) {
                return Err(invalid(
                    &self.scenario,
                    format!("{path}.restart-agent.node"),
                    format!("no node {:?}", r.node),
                ));
            }
            self.rebuild_agents(Some(&r.node), true)
                .map_err(|e| invalid(&self.scenario, format!("{path}.restart-agent"), e))?;
            return Ok(Observed::default());
        }
        if let Some(records) = &step.update_zone {
            for (k, r) in records.iter().enumerate() {
                check_record(&self.scenario, &format!("{path}.update-zone[{k}]"), r)?;
            }
            let names: BTreeSet<String> = records
                .iter()
                .map(|r| fqdnpath_names::normalize(&r.name).into_owned())
                .collect();
            for name in &names {
                self.zone.remove(name);
            }
            for r in records.iter().filter(|r| !r.remove) {
                self.zone
                    .entry(fqdnpath_names::normalize(&r.name).into_owned())
                    .or_default()
                    .push(r.clone());
            }
        }
        Ok(Observed::default())
    }

    fn connect(
        &mut self,
        pod: &SimPod,
        dst: IpAddr,
        port: u16,
        proto: u8,
        alias: Option<String>,
    ) -> Observed {
        let sport = self.next_port;
        self.next_port = self.next_port.wrapping_add(1).max(40_000);
        let (dst, port) = self
            .table
            .translate(pod.ip, &pod.node, dst, proto, port, u64::from(sport))
            .map_or((dst, port), |t| (t.ip, t.port));
        let packet = Packet {
            src: pod.ip,
            dst,
            proto,
            sport,
            dport: port,
            flags: TcpFlags {
                syn: proto == PROTO_TCP,
                ..TcpFlags::default()
            },
        };
        let event = self.egress(&pod.node, &packet);
        if event.verdict != Verdict::Dropped {
            let reply = Packet {
                src: dst,
                dst: pod.ip,
                sport: port,
                dport: sport,
                proto,
                flags: TcpFlags::default(),
            };
            let now = self.now;
            if let Some(n) = self.nodes.get_mut(&pod.node) {
                n.datapath.ingress(&reply, now);
            }
            if let Some(alias) = alias {
                self.connections.insert(
                    alias,
                    (
                        pod.node.clone(),
                        Packet {
                            flags: TcpFlags::default(),
                            ..packet
                        },
                    ),
                );
            }
        }
        observed_of(&event)
    }

    /// The kube-dns service every pod resolves through.
    fn resolver(&self) -> Option<(IpAddr, u16)> {
        self.services
            .iter()
            .find(|s| s.name == "kube-dns" && s.namespace == "kube-system")
            .map(|s| (s.cluster_ip, 53))
    }

    fn resolve(&mut self, pod: &SimPod, name: &str, qtype: RecordType) -> Observed {
        let qname = fqdnpath_names::normalize(name).into_owned();
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let mut observed = Observed::default();
        if self.scenario.cluster.dns_mode == DnsMode::Localdns {
            // Answered on the node before any proxy: nothing is learned.
            let wire = self.authoritative(id, &qname, qtype);
            return self.deliver(pod, &qname, &wire, observed);
        }
        let Some((service_ip, port)) = self.resolver() else {
            observed.rcode = Some("TIMEOUT".into());
            return observed;
        };
        let sport = self.next_port;
        self.next_port = self.next_port.wrapping_add(1).max(40_000);
        let Some(t) = self.table.translate(
            pod.ip,
            &pod.node,
            service_ip,
            PROTO_UDP,
            port,
            u64::from(sport),
        ) else {
            observed.rcode = Some("TIMEOUT".into());
            return observed;
        };
        let packet = Packet {
            src: pod.ip,
            dst: t.ip,
            proto: PROTO_UDP,
            sport,
            dport: t.port,
            flags: TcpFlags::default(),
        };
        let event = self.egress(&pod.node, &packet);
        observed.verdict = Some(event.verdict);
        observed.identity = Some(event.dst_identity.0);
        observed.match_type = event.match_type;
        if event.verdict == Verdict::Dropped {
            observed.drop_reason = event.drop_reason.map(|r| r.desc().to_owned());
            observed.rcode = Some("TIMEOUT".into());
            return observed;
        }
        let wire = self.server_answer(t.ip, id, &qname, qtype, &mut Vec::new());
        let Some(dns) = event.dns.filter(|_| event.verdict == Verdict::Redirected) else {
            // Allowed without a DNS rule: the answer goes straight back, nothing is learned.
            return self.deliver(pod, &qname, &wire, observed);
        };
        let query = query_wire(id, &qname, qtype);
        let node = self
            .nodes
            .get_mut(&pod.node)
            .expect("the pod's node exists");
        match node.agent.on_query(&query, &dns) {
            Ok(QueryDecision::Reject { response, .. }) => {
                self.deliver(pod, &qname, &response, observed)
            }
            Ok(QueryDecision::Forward { .. }) => {
                let now = self.now;
                let latency = self.scenario.datapath.update_latency.0;
                let max_delay = self.scenario.agent.tofqdns_proxy_response_max_delay.0;
                if let Ok(learned) = node.agent.on_response(EndpointId(pod.endpoint), &wire, now) {
                    // Nothing new to program (Cilium returns early): no wait.
                    let programmed = if learned.deltas.is_empty() {
                        now
                    } else {
                        now + latency
                    };
                    if !learned.deltas.is_empty() {
                        node.pending
                            .push((programmed, Pending::Deltas(learned.deltas)));
                    }
                    let h = hold(now, programmed, max_delay);
                    observed.held = Some(h.release_at.saturating_duration_since(now));
                    self.advance_to(h.release_at);
                    self.deliver(pod, &qname, &wire, observed)
                } else {
                    // The proxy could not handle the answer: Cilium answers SERVFAIL.
                    let servfail = fqdnpath_agent::servfail(&query).unwrap_or_default();
                    self.deliver(pod, &qname, &servfail, observed)
                }
            }
            Err(_) => {
                observed.rcode = Some("SERVFAIL".into());
                observed
            }
        }
    }

    /// The pod receives `wire`: record the answer and its line.
    fn deliver(
        &mut self,
        pod: &SimPod,
        qname: &str,
        wire: &[u8],
        mut observed: Observed,
    ) -> Observed {
        match observe(wire) {
            Ok(o) => {
                let rcode = o.rcode_name();
                let ips: Vec<String> = o.addresses.iter().map(ToString::to_string).collect();
                let json = if self.json_output {
                    let source = self.endpoint_json(&pod.node, pod.ip, 0);
                    let flow = serde_json::json!({
                        "time": rfc3339(self.now),
                        "verdict": "FORWARDED",
                        "Type": "L7",
                        "node_name": pod.node,
                        "event_type": {"type": 129},
                        "traffic_direction": "EGRESS",
                        "is_reply": true,
                        "destination": source,
                        "l7": {
                            "type": "RESPONSE",
                            "dns": {
                                "query": qname,
                                "ips": ips,
                                "ttl": if o.ttl == u32::MAX { 0 } else { o.ttl },
                                "cnames": o.cnames,
                                "rcode": u16::from(o.rcode),
                                "qtypes": [o.qtype.to_string()],
                            },
                        },
                    });
                    serde_json::json!({"flow": flow, "node_name": pod.node, "time": rfc3339(self.now)})
                } else {
                    serde_json::Value::Null
                };
                self.report.lines.push(Line {
                    time: self.now,
                    text: format!(
                        "{} {} dns-response {} {} {} [{}]",
                        clock(self.now),
                        pod.key(),
                        qname,
                        o.qtype,
                        rcode,
                        ips.join(",")
                    ),
                    json,
                });
                self.answers
                    .insert((pod.key(), qname.to_owned()), o.addresses.clone());
                observed.rcode = Some(rcode);
                observed.ips = Some(o.addresses);
            }
            Err(_) => observed.rcode = Some("SERVFAIL".into()),
        }
        observed
    }

    /// The answer of the DNS server pod at `server` (a cache forwards its misses upstream).
    fn server_answer(
        &mut self,
        server: IpAddr,
        id: u16,
        qname: &str,
        qtype: RecordType,
        chain: &mut Vec<IpAddr>,
    ) -> Vec<u8> {
        let role = self
            .pods
            .iter()
            .find(|p| p.ip == server)
            .and_then(|p| p.dns.clone().map(|d| (d, p.node.clone())));
        match role {
            Some(((DnsRoleKind::Authoritative, _), _)) => self.authoritative(id, qname, qtype),
            Some(((DnsRoleKind::Cache, upstream), node)) => {
                if chain.contains(&server) {
                    // A forwarding loop (the upstream is redirected back to a cache).
                    return ResponseBuilder::new(id, qname, qtype)
                        .rcode(ResponseCode::ServFail)
                        .to_wire()
                        .unwrap_or_default();
                }
                chain.push(server);
                let key = (qname.to_owned(), u16::from(qtype));
                let now = self.now;
                if let Some((stored, expiry, wire)) =
                    self.dns_caches.get(&server).and_then(|c| c.get(&key))
                    && now < *expiry
                {
                    return cached_answer(wire, id, now.saturating_duration_since(*stored));
                }
                let upstream = upstream.and_then(|u| {
                    let (ns, name) = u.split_once('/')?;
                    self.services
                        .iter()
                        .find(|s| s.namespace == ns && s.name == name)
                        .map(|s| s.cluster_ip)
                });
                let target = upstream.and_then(|ip| {
                    self.table
                        .translate(server, &node, ip, PROTO_UDP, 53, u64::from(id))
                });
                let Some(target) = target else {
                    return ResponseBuilder::new(id, qname, qtype)
                        .rcode(ResponseCode::ServFail)
                        .to_wire()
                        .unwrap_or_default();
                };
                let wire = self.server_answer(target.ip, id, qname, qtype, chain);
                let ttl = observe(&wire)
                    .ok()
                    .filter(|o| o.ttl != u32::MAX)
                    .map_or(0, |o| o.ttl);
                self.dns_caches.entry(server).or_default().insert(
                    key,
                    (now, now + Duration::from_secs(u64::from(ttl)), wire.clone()),
                );
                wire
            }
            None => ResponseBuilder::new(id, qname, qtype)
                .rcode(ResponseCode::Refused)
                .to_wire()
                .unwrap_or_default(),
        }
    }

    /// The authoritative answer from the zone, following CNAMEs.
    fn authoritative(&self, id: u16, qname: &str, qtype: RecordType) -> Vec<u8> {
        let mut builder = ResponseBuilder::new(id, qname, qtype);
        let mut name = qname.to_owned();
        let mut found = false;
        for _ in 0..8 {
            let Some(records) = self.zone.get(&name) else {
                break;
            };
            found = true;
            if let Some(cname) = records.iter().find(|r| r.kind.as_deref() == Some("CNAME")) {
                let target =
                    fqdnpath_names::normalize(cname.value.as_deref().unwrap_or("")).into_owned();
                builder = builder.cname(&name, &target, cname.ttl.unwrap_or(0));
                name = target;
                continue;
            }
            for r in records {
                let want = if qtype == RecordType::AAAA {
                    "AAAA"
                } else {
                    "A"
                };
                if r.kind.as_deref() == Some(want)
                    && let Some(ip) = r.value.as_deref().and_then(|v| v.parse::<IpAddr>().ok())
                {
                    builder = builder.address(&name, ip, r.ttl.unwrap_or(0));
                }
            }
            break;
        }
        if !found {
            builder = builder.rcode(ResponseCode::NXDomain);
        }
        builder.to_wire().unwrap_or_default()
    }

    fn check(&mut self, step: usize, expect: &Expect, observed: &Observed) {
        let mut fail = |what: &str, want: String, got: String| {
            self.report.failures.push(Failure {
                step,
                message: format!("steps[{step}]: expected {what} {want}, got {got}"),
            });
        };
        let mut checked = 0;
        let show = |o: &Option<String>| o.clone().unwrap_or_else(|| "none".into());
        if let Some(want) = &expect.rcode {
            checked += 1;
            if observed.rcode.as_deref() != Some(want.as_str()) {
                fail("rcode", want.clone(), show(&observed.rcode));
            }
        }
        if let Some(want) = &expect.ips {
            checked += 1;
            let mut w = want.clone();
            w.sort();
            let mut g = observed.ips.clone().unwrap_or_default();
            g.sort();
            if w != g {
                fail("ips", format!("{w:?}"), format!("{g:?}"));
            }
        }
        if let Some(want) = &expect.verdict {
            checked += 1;
            let got = observed.verdict.map(|v| v.name().to_owned());
            if got.as_deref() != Some(want.as_str()) {
                fail("verdict", want.clone(), show(&got));
            }
        }
        if let Some(want) = &expect.drop_reason {
            checked += 1;
            if observed.drop_reason.as_deref() != Some(want.as_str()) {
                fail("drop_reason", want.clone(), show(&observed.drop_reason));
            }
        }
        if let Some(want) = &expect.held {
            checked += 1;
            if observed.held != Some(want.0) {
                fail(
                    "held",
                    format!("{:?}", want.0),
                    format!("{:?}", observed.held),
                );
            }
        }
        if let Some(want) = expect.identity {
            checked += 1;
            if observed.identity != Some(want) {
                fail(
                    "identity",
                    want.to_string(),
                    format!("{:?}", observed.identity),
                );
            }
        }
        if let Some(want) = &expect.policy_match_type {
            checked += 1;
            let got = observed.match_type.map(|m| m.name().to_owned());
            if got.as_deref() != Some(want.as_str()) {
                fail("policy_match_type", want.clone(), show(&got));
            }
        }
        self.report.checked += checked;
    }
}

/// The changes that turn what `datapath` holds for the `local` endpoints into what `compiler`
/// compiled.
impl Target {
    fn of(compiler: &Compiler, local: &[u16]) -> Self {
        Self {
            ipcache: compiler.ipcache().clone(),
            policies: local
                .iter()
                .map(|&endpoint| {
                    let map = compiler
                        .policy_map(endpoint)
                        .map(|m| m.iter().map(|(k, a)| (*k, a.clone())).collect())
                        .unwrap_or_default();
                    (endpoint, map)
                })
                .collect(),
        }
    }

    /// The changes that bring `datapath` to this target.
    fn deltas_from(&self, datapath: &dyn Datapath) -> Vec<Delta> {
        let mut out = Vec::new();
        let held: BTreeMap<_, _> = datapath.ipcache_entries().into_iter().collect();
        for (prefix, identity) in &self.ipcache {
            if held.get(prefix) != Some(identity) {
                out.push(Delta::IpcacheUpsert {
                    prefix: *prefix,
                    identity: *identity,
                });
            }
        }
        for prefix in held.keys() {
            if !self.ipcache.contains_key(prefix) {
                out.push(Delta::IpcacheDelete { prefix: *prefix });
            }
        }
        for (endpoint, want) in &self.policies {
            let endpoint = *endpoint;
            let held: BTreeMap<_, _> = datapath.policy_entries(endpoint).into_iter().collect();
            for (key, action) in want {
                if held.get(key) != Some(action) {
                    out.push(Delta::PolicyUpsert {
                        endpoint,
                        key: *key,
                        action: action.clone(),
                    });
                }
            }
            for key in held.keys() {
                if !want.contains_key(key) {
                    out.push(Delta::PolicyDelete {
                        endpoint,
                        key: *key,
                    });
                }
            }
        }
        out
    }
}

/// The verdict part of `explain`: the entry that decides and the rules behind it.
fn verdict_lines(
    compiler: &Compiler,
    endpoint: u16,
    identity: Identity,
    proto: u8,
    port: u16,
) -> Vec<String> {
    use fqdnpath_policy::policymap::PolicyVerdict;
    let mut out = Vec::new();
    let Some(map) = compiler.policy_map(endpoint) else {
        out.push("verdict: the pod has no policy map".into());
        return out;
    };
    let (line, key) = match map.lookup(identity, proto, port) {
        PolicyVerdict::Allowed { key, match_type } => (
            format!(
                "verdict: FORWARDED by the entry {key} ({})",
                match_type.name()
            ),
            Some(key),
        ),
        PolicyVerdict::Redirected {
            key, match_type, ..
        } => (
            format!(
                "verdict: REDIRECTED to the DNS proxy by the entry {key} ({})",
                match_type.name()
            ),
            Some(key),
        ),
        PolicyVerdict::Dropped {
            reason,
            key: Some(key),
        } => (
            format!(
                "verdict: DROPPED ({}) by the deny entry {key}",
                reason.desc()
            ),
            Some(key),
        ),
        PolicyVerdict::Dropped { reason, key: None } => (
            format!(
                "verdict: DROPPED ({}): no entry allows identity {identity} on {}/{port}",
                reason.desc(),
                if proto == PROTO_TCP { "TCP" } else { "UDP" }
            ),
            None,
        ),
    };
    out.push(line);
    if let Some(key) = key {
        for rule in compiler.rules_behind(endpoint, &key) {
            out.push(format!("  from {rule}"));
        }
    }
    out
}

fn observed_of(event: &FlowEvent) -> Observed {
    Observed {
        verdict: Some(event.verdict),
        drop_reason: event.drop_reason.map(|r| r.desc().to_owned()),
        identity: Some(event.dst_identity.0),
        match_type: event.match_type,
        ..Observed::default()
    }
}

fn unreachable_event(packet: &Packet, now: Timestamp) -> FlowEvent {
    FlowEvent {
        time: now,
        verdict: Verdict::Dropped,
        drop_reason: None,
        egress: true,
        endpoint: None,
        packet: *packet,
        src_identity: Identity::ANY,
        dst_identity: Identity::WORLD,
        is_reply: false,
        match_type: None,
        policy_key: None,
        dns: None,
    }
}

/// A cached answer served again: the client's ID, and every TTL lowered by the time the
/// answer spent in the cache (as a caching resolver answers with the remaining TTL).
fn cached_answer(wire: &[u8], id: u16, age: Duration) -> Vec<u8> {
    let Ok(mut message) = fqdnpath_cache::hickory_proto::op::Message::from_vec(wire) else {
        return wire.to_vec();
    };
    message.metadata.id = id;
    let age = u32::try_from(age.as_secs()).unwrap_or(u32::MAX);
    for record in &mut message.answers {
        record.ttl = record.ttl.saturating_sub(age);
    }
    message.to_vec().unwrap_or_else(|_| wire.to_vec())
}

fn query_wire(id: u16, qname: &str, qtype: RecordType) -> Vec<u8> {
    ResponseBuilder::new(id, qname, qtype)
        .as_query()
        .to_wire()
        .unwrap_or_default()
}

fn check_record(scenario: &Scenario, path: &str, r: &ZoneRecord) -> Result<(), ScenarioError> {
    if r.remove {
        return Ok(());
    }
    let kind = r.kind.as_deref().unwrap_or("");
    let value = r.value.as_deref().unwrap_or("");
    let ok = match kind {
        "A" => value.parse::<std::net::Ipv4Addr>().is_ok(),
        "AAAA" => value.parse::<std::net::Ipv6Addr>().is_ok(),
        "CNAME" => !value.is_empty(),
        _ => {
            return Err(invalid(
                scenario,
                format!("{path}.type"),
                format!("{kind:?} is not A, AAAA or CNAME"),
            ));
        }
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(
            scenario,
            format!("{path}.value"),
            format!("{value:?} is not a valid {kind} value"),
        ))
    }
}
