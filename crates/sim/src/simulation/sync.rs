//! From the agents to the datapaths: map changes wait for the datapath's update latency, and
//! a rebuilt or restarted agent's maps are synced into the datapath when they land.

use std::collections::BTreeMap;

use fqdnpath_agent::Agent;
use fqdnpath_datapath::Datapath;
use fqdnpath_policy::compile::{Compiler, Delta, EndpointId, Prefix};
use fqdnpath_policy::identity::Identity;
use fqdnpath_policy::policymap::{PolicyAction, PolicyKey};

use super::{Simulation, local_endpoints};

/// A change on its way to a node's datapath.
pub(super) enum Pending {
    /// Map changes, applied as they are.
    Deltas(Vec<Delta>),
    /// A rebuilt (or restarted) agent's maps: the datapath is brought to them from whatever
    /// it holds when they land, as the new agent syncs the maps it finds. The difference is
    /// taken then, not when the agent was rebuilt: changes still on their way at that moment
    /// land first, and an entry they add must not outlive the sync.
    Sync(Target),
}

/// What a compiler holds for one node: the ipcache and the local endpoints' policy maps.
pub(super) struct Target {
    ipcache: BTreeMap<Prefix, Identity>,
    policies: Vec<(EndpointId, BTreeMap<PolicyKey, PolicyAction>)>,
}

impl Target {
    /// What `compiler` compiled for the `local` endpoints.
    fn of(compiler: &Compiler, local: &[EndpointId]) -> Self {
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

impl Simulation {
    /// Recompiles the agents of `only` (or of every node) under the current policies; each
    /// keeps its caches (exactly, or as after a restart). After the update latency the
    /// datapath is brought to what the new agent compiled, from what it holds then (changes
    /// still on their way when the agent was rebuilt land first).
    pub(super) fn rebuild_agents(
        &mut self,
        only: Option<&str>,
        restart: bool,
    ) -> Result<(), String> {
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
            let local: Vec<EndpointId> = local_endpoints(&self.pods, name).collect();
            let target = Target::of(agent.compiler(), &local);
            node.agent = agent;
            node.pending.push((now + latency, Pending::Sync(target)));
        }
        self.apply_pending();
        Ok(())
    }

    /// Lands every change that is due by now.
    pub(super) fn apply_pending(&mut self) {
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
}
