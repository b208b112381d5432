//! Building the cluster from the scenario: pods (and one pod per node for each `DaemonSet`),
//! services and Local Redirect Policies, the manifests, and each node's agent and datapath.

use std::collections::BTreeSet;
use std::net::IpAddr;

use fqdnpath_agent::{Agent, AgentConfig, RejectCode};
use fqdnpath_cache::FqdnConfig;
use fqdnpath_datapath::service::{LocalRedirect, Pod, Service, ServicePort, ServiceTable};
use fqdnpath_policy::compile::{Endpoint, EndpointId};
use fqdnpath_policy::labels::Labels;
use fqdnpath_policy::manifest::{LocalRedirectPolicy, NetworkPolicy, port_protocol};
use fqdnpath_policy::{Manifest, load_file};

use super::{DatapathFactory, NodeState, SimPod, Simulation, local_endpoints};
use crate::scenario::{ManifestSource, RejectResponseCode, Scenario, ScenarioError};

/// The pods of `scenario`, each with its endpoint ID: its own pods, then one pod per node for
/// each `DaemonSet`.
pub(super) fn pods(scenario: &Scenario) -> Result<Vec<SimPod>, ScenarioError> {
    let mut pods = Vec::new();
    for (i, p) in scenario.cluster.pods.iter().enumerate() {
        if !scenario.cluster.nodes.contains(&p.node) {
            return Err(scenario.invalid(
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
            endpoint: EndpointId(0),
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
                endpoint: EndpointId(0),
            });
        }
    }
    let mut seen = BTreeSet::new();
    for (i, p) in pods.iter_mut().enumerate() {
        if !seen.insert(p.ip) {
            return Err(scenario.invalid("cluster.pods", format!("IP {} is used twice", p.ip)));
        }
        p.endpoint = EndpointId(u16::try_from(i + 1).unwrap_or(u16::MAX));
    }
    Ok(pods)
}

/// The services of `scenario`, each backed by the `pods` its selector picks.
pub(super) fn services(
    scenario: &Scenario,
    pods: &[SimPod],
) -> Result<Vec<Service>, ScenarioError> {
    let mut services = Vec::new();
    for (i, s) in scenario.cluster.services.iter().enumerate() {
        let mut ports = Vec::new();
        for (k, p) in s.ports.iter().enumerate() {
            let proto = port_protocol(&p.protocol).ok_or_else(|| {
                scenario.invalid(
                    format!("cluster.services[{i}].ports[{k}].protocol"),
                    format!("unknown protocol {:?}", p.protocol),
                )
            })?;
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
    Ok(services)
}

impl Simulation {
    /// The network policies and Local Redirect Policies of the scenario's `manifests`.
    pub(super) fn load_manifests(
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

    /// The manifests of `source`, at key `path` of the scenario.
    pub(super) fn load_source(
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
        loaded.map_err(|reason| self.invalid(path, reason))
    }

    /// The agents' configuration, from the scenario's `agent:` flags.
    pub(super) fn agent_config(&self) -> AgentConfig {
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

    /// Every pod as the policy compiler sees it.
    pub(super) fn endpoints(&self) -> Vec<Endpoint> {
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

    /// The service table under the current Local Redirect Policies.
    pub(super) fn rebuild_services(&mut self) {
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
    pub(super) fn build(&mut self, factory: &mut DatapathFactory<'_>) -> Result<(), ScenarioError> {
        self.rebuild_services();
        let config = self.agent_config();
        let endpoints = self.endpoints();
        for node in &self.scenario.cluster.nodes {
            let agent = Agent::new(config, &self.policies, &endpoints)
                .map_err(|e| self.invalid("manifests", e.to_string()))?;
            let mut datapath = factory(node).map_err(|source| ScenarioError::Datapath {
                file: self.scenario.file.clone(),
                node: node.clone(),
                source,
            })?;
            let local: BTreeSet<EndpointId> = local_endpoints(&self.pods, node).collect();
            datapath
                .program(agent.compiler(), &|id| local.contains(&id))
                .map_err(|e| self.invalid("cluster", e.to_string()))?;
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
}
