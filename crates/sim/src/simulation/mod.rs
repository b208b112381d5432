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
//!
//! This module holds the [`Simulation`] and its run loop (steps in order, time moving with
//! the background jobs); the rest is one module per concern:
//!
//! - `cluster`: pods, `DaemonSet` pods, services, manifests, each node's agent and datapath;
//! - `steps`: what each step kind does;
//! - `dns`: the resolve path, the authoritative server and the node-local caches;
//! - `sync`: map changes on their way from the agents to the datapaths;
//! - `expect`: what a step observed, checked against its `expect`;
//! - `output`: each flow and DNS answer as Hubble's flow, with its text and JSON ([`Line`]);
//! - `explain`: `fqdnpath explain`;
//! - `clock`: the scenario's calendar and Hubble's time formats.

mod clock;
mod cluster;
mod dns;
mod expect;
mod explain;
mod output;
mod steps;
mod sync;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use fqdnpath_agent::Agent;
use fqdnpath_cache::{DNS_GC_INTERVAL, EndpointId, Timestamp};
use fqdnpath_datapath::service::{Service, ServiceTable};
use fqdnpath_datapath::{Datapath, DatapathError, FlowEvent, Packet, ReferenceDatapath, Verdict};
use fqdnpath_policy::identity::Identity;
use fqdnpath_policy::manifest::{LocalRedirectPolicy, NetworkPolicy};

pub use expect::Failure;
pub use output::Line;

use crate::scenario::{DnsRoleKind, Scenario, ScenarioError};
use dns::{CachedAnswers, Zone};
use sync::Pending;

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
    endpoint: EndpointId,
}

impl SimPod {
    fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// The endpoints of the pods on `node`.
fn local_endpoints<'a>(pods: &'a [SimPod], node: &'a str) -> impl Iterator<Item = EndpointId> + 'a {
    pods.iter()
        .filter(move |p| p.node == node)
        .map(|p| p.endpoint)
}

/// One node: its agent, its datapath, and the map changes on their way between them.
struct NodeState {
    agent: Agent,
    datapath: Box<dyn Datapath>,
    /// Map changes waiting for the update latency: (when they land, changes), in order.
    pending: Vec<(Timestamp, Pending)>,
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

/// Makes a node's datapath, given the node's name.
pub type DatapathFactory<'a> = dyn FnMut(&str) -> Result<Box<dyn Datapath>, DatapathError> + 'a;

/// A running simulation.
pub struct Simulation {
    scenario: Scenario,
    now: Timestamp,
    pods: Vec<SimPod>,
    services: Vec<Service>,
    table: ServiceTable,
    nodes: BTreeMap<String, NodeState>,
    zone: Zone,
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
    /// Whether lines carry their Hubble JSON as a `serde_json::Value` (built only when asked
    /// for: it costs more than the step itself).
    json_output: bool,
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
    pub fn with_datapaths(
        scenario: Scenario,
        factory: &mut DatapathFactory<'_>,
    ) -> Result<Self, ScenarioError> {
        let pods = cluster::pods(&scenario)?;
        let services = cluster::services(&scenario, &pods)?;
        let mut sim = Self {
            now: Timestamp::ZERO,
            pods,
            services,
            table: ServiceTable::default(),
            nodes: BTreeMap::new(),
            zone: dns::zone(&scenario.zone),
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
            let observed = self.step(i, &step.action)?;
            if let Some(expect) = &step.expect {
                self.check(i, expect, &observed);
            }
        }
        Ok(())
    }

    /// An input error at key `path` of the scenario.
    fn invalid(&self, path: impl Into<String>, reason: impl Into<String>) -> ScenarioError {
        self.scenario.invalid(path, reason)
    }

    /// Refuses to move the clock past [`MAX_SCENARIO_TIME`]: every minute of virtual time runs
    /// the GC jobs, so a typo such as `advance: 100000h` would otherwise run for hours.
    fn check_horizon(&self, path: &str, to: Timestamp) -> Result<(), ScenarioError> {
        if to > Timestamp::ZERO + MAX_SCENARIO_TIME {
            return Err(self.invalid(
                path,
                format!(
                    "this would take the scenario past {} days of virtual time, the most it simulates",
                    MAX_SCENARIO_TIME.as_secs() / 86_400
                ),
            ));
        }
        Ok(())
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

    fn pod(&self, key: &str) -> Option<&SimPod> {
        self.pods.iter().find(|p| p.key() == key)
    }

    /// One end of a flow seen on `node`: the pod at `ip` if there is one, the identity and
    /// its labels as the node's agent knows them.
    fn peer(&self, node: &str, ip: IpAddr, identity: u32) -> fqdnpath_hubble::Endpoint {
        let labels: Vec<String> = self
            .nodes
            .get(node)
            .and_then(|n| n.agent.compiler().identity_labels(Identity(identity)))
            .map(|l| l.iter().map(ToString::to_string).collect())
            .unwrap_or_default();
        let pod = self
            .pods
            .iter()
            .find(|p| p.ip == ip)
            .map(|p| (p.endpoint, p.namespace.as_str(), p.name.as_str()));
        output::endpoint(pod, identity, labels)
    }

    /// A packet leaving a pod on `node`: judged by the node's datapath, with its line.
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

    /// Records the line of a flow seen on `node`.
    fn flow_line(&mut self, node: &str, event: &FlowEvent) {
        let p = &event.packet;
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
        let source = self.peer(node, p.src, event.src_identity.0);
        let destination = self.peer(node, p.dst, event.dst_identity.0);
        let flow = output::flow(event, node, source, destination, names);
        let line = Line::new(event.time, flow, self.json_output);
        self.report.lines.push(line);
    }
}

/// The flow event of a packet from a node the simulation does not have: dropped.
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
