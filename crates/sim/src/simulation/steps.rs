//! The steps: one method per step kind, each checking what only the running cluster can tell
//! (the pod, the connection, the node, the manifest exist) and naming the key when it does not.

use std::net::IpAddr;

use fqdnpath_datapath::conntrack::TcpFlags;
use fqdnpath_datapath::{Packet, Verdict};
use fqdnpath_policy::Manifest;
use fqdnpath_policy::policymap::PROTO_TCP;

use super::expect::Observed;
use super::{SimPod, Simulation};
use crate::scenario::{
    Action, ConnectStep, ConnectionRef, DeleteStep, Destination, ManifestSource, RestartStep,
    ScenarioError,
};

impl Simulation {
    /// Runs step `i`'s action; `at` has moved time already.
    pub(super) fn step(&mut self, i: usize, action: &Action) -> Result<Observed, ScenarioError> {
        let path = format!("steps[{i}]");
        match action {
            Action::Wait => Ok(Observed::default()),
            Action::Advance(d) => {
                self.check_horizon(&format!("{path}.advance"), self.now + d.0)?;
                self.advance_to(self.now + d.0);
                Ok(Observed::default())
            }
            Action::Resolve(r) => {
                let Some(pod) = self.pod(&r.pod).cloned() else {
                    return Err(
                        self.invalid(format!("{path}.resolve.pod"), format!("no pod {}", r.pod))
                    );
                };
                Ok(self.resolve(&pod, &r.name, r.kind))
            }
            Action::Connect(c) => self.connect_step(&path, c),
            Action::Send(r) => self.send(&path, r),
            Action::Close(r) => self.close(&path, r),
            Action::Apply(source) => self.apply(&path, source),
            Action::Delete(d) => self.delete(&path, d),
            Action::RestartAgent(r) => self.restart_agent(&path, r),
            Action::UpdateZone(records) => {
                self.update_zone(records);
                Ok(Observed::default())
            }
        }
    }

    fn connect_step(&mut self, path: &str, c: &ConnectStep) -> Result<Observed, ScenarioError> {
        let Some(pod) = self.pod(&c.pod).cloned() else {
            return Err(self.invalid(format!("{path}.connect.pod"), format!("no pod {}", c.pod)));
        };
        let dst = match &c.to {
            Destination::Ip(ip) => *ip,
            Destination::Name(name) => {
                let key = (pod.key(), fqdnpath_names::normalize(name).into_owned());
                match self.answers.get(&key).and_then(|ips| ips.first()) {
                    Some(ip) => *ip,
                    None => {
                        return Err(self.invalid(
                            format!("{path}.connect.name"),
                            format!("{} got no address for {name} before", c.pod),
                        ));
                    }
                }
            }
        };
        Ok(self.connect(&pod, dst, c.port, c.protocol.number(), c.alias.clone()))
    }

    /// A connection's first packet (a SYN for TCP), translated by the services, and the
    /// reply when it passes; the connection is kept under `alias`.
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
        Observed::of(&event)
    }

    fn send(&mut self, path: &str, r: &ConnectionRef) -> Result<Observed, ScenarioError> {
        let Some((node, packet)) = self.connections.get(&r.connection).cloned() else {
            return Err(self.invalid(
                format!("{path}.send.connection"),
                format!("no open connection {:?}", r.connection),
            ));
        };
        let event = self.egress(&node, &packet);
        Ok(Observed::of(&event))
    }

    fn close(&mut self, path: &str, r: &ConnectionRef) -> Result<Observed, ScenarioError> {
        let Some((node, packet)) = self.connections.remove(&r.connection) else {
            return Err(self.invalid(
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
        Ok(Observed::of(&event))
    }

    /// `apply`: each policy replaces the one of the same kind, namespace and name; the agents
    /// recompile.
    fn apply(&mut self, path: &str, source: &ManifestSource) -> Result<Observed, ScenarioError> {
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
            .map_err(|e| self.invalid(format!("{path}.apply"), e))?;
        Ok(Observed::default())
    }

    /// `delete`: the policy or LRP goes; the agents recompile.
    fn delete(&mut self, path: &str, d: &DeleteStep) -> Result<Observed, ScenarioError> {
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
            return Err(self.invalid(
                format!("{path}.delete"),
                format!("no {} {namespace}/{} to delete", d.kind, d.name),
            ));
        }
        self.rebuild_services();
        self.rebuild_agents(None, false)
            .map_err(|e| self.invalid(format!("{path}.delete"), e))?;
        Ok(Observed::default())
    }

    /// `restart-agent`: the node's agent restarts from its snapshot.
    fn restart_agent(&mut self, path: &str, r: &RestartStep) -> Result<Observed, ScenarioError> {
        if !self.nodes.contains_key(&r.node) {
            return Err(self.invalid(
                format!("{path}.restart-agent.node"),
                format!("no node {:?}", r.node),
            ));
        }
        self.rebuild_agents(Some(&r.node), true)
            .map_err(|e| self.invalid(format!("{path}.restart-agent"), e))?;
        Ok(Observed::default())
    }
}
