//! `fqdnpath explain`: the chain behind one verdict, without sending anything.

use std::net::IpAddr;

use fqdnpath_policy::compile::{Compiler, EndpointId, Prefix};
use fqdnpath_policy::identity::Identity;
use fqdnpath_policy::policymap::PolicyVerdict;

use super::{Simulation, clock};
use crate::scenario::{Protocol, ScenarioError};

impl Simulation {
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
        let Some(p) = self.pod(pod).cloned() else {
            return Err(self.invalid("--pod", format!("no pod {pod}")));
        };
        let protocol: Protocol = protocol
            .parse()
            .map_err(|e| self.invalid("--protocol", format!("{e}")))?;
        let proto = protocol.number();
        let mut out = Vec::new();
        let node = &self.nodes[&p.node];
        let compiler = node.agent.compiler();
        let own = compiler.endpoint_identity(p.endpoint).map_or(0, |i| i.0);
        out.push(format!(
            "at {}: pod {} on {}, endpoint {}, identity {own}",
            clock::text(self.now),
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
                return Err(self.invalid(
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
                        clock::text(e.expiry)
                    ));
                }
            }
            if let Some(z) = dns.zombies.get(dst) {
                let names: Vec<&str> = z.names.iter().map(fqdnpath_names::Fqdn::as_str).collect();
                out.push(format!(
                    "zombie of endpoint {endpoint}: {dst} [{}], pending since {}; it keeps the identity while a connection may use it",
                    names.join(","),
                    clock::text(z.delete_pending_at)
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
        out.extend(verdict_lines(
            compiler, p.endpoint, identity, protocol, port,
        ));
        Ok(out)
    }
}

/// The verdict part of `explain`: the entry that decides and the rules behind it.
fn verdict_lines(
    compiler: &Compiler,
    endpoint: EndpointId,
    identity: Identity,
    protocol: Protocol,
    port: u16,
) -> Vec<String> {
    let mut out = Vec::new();
    let Some(map) = compiler.policy_map(endpoint) else {
        out.push("verdict: the pod has no policy map".into());
        return out;
    };
    let (line, key) = match map.lookup(identity, protocol.number(), port) {
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
                "verdict: DROPPED ({}): no entry allows identity {identity} on {protocol}/{port}",
                reason.desc(),
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
