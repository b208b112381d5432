//! One policy rule resolved: the peers it selects, the protocol and port keys and actions it
//! writes, and the entries it gives an endpoint for one remote identity.

use std::collections::BTreeSet;

use fqdnpath_names::FqdnSelector;

use super::{CompileError, Compiler, Prefix};
use crate::identity::Identity;
use crate::labels::{
    EndpointSelector, Labels, SOURCE_CIDR, SOURCE_FQDN, SOURCE_RESERVED, entity_selectors,
    peer_selector, subject_selector,
};
use crate::manifest::types::{CidrRule, EgressRule, NetworkPolicy, PortRule};
use crate::manifest::validate::{parse_go_uint, protocol};
use crate::policymap::{
    DnsAllow, FqdnSelectorKey, PROTO_ICMP, PROTO_ICMPV6, PROTO_SCTP, PROTO_TCP, PROTO_UDP,
    PolicyAction, PolicyKey, Protocol, port_range_prefixes,
};

/// The remote side of a rule.
#[derive(Clone, Debug)]
pub(super) enum Peer {
    /// No L3 peer: every identity (identity 0 keys).
    Any,
    /// Identities whose labels a selector selects.
    Selectors(Vec<EndpointSelector>),
    /// Identities of CIDR prefixes within `cidr` and outside every `except`; a /0 also
    /// selects `world`.
    Cidrs(Vec<(Prefix, Vec<Prefix>)>),
    /// FQDN identities carrying one of these selectors' labels.
    Fqdns(BTreeSet<String>),
}

impl Peer {
    pub(super) fn selects(&self, labels: &Labels) -> bool {
        match self {
            Self::Any => true,
            Self::Selectors(selectors) => selectors.iter().any(|s| s.matches(labels)),
            Self::Cidrs(cidrs) => {
                // The most specific CIDR label decides: the policy prefixes that hold an IP
                // are nested, so the longest one says which allow and except ranges it is in.
                let most_specific = labels
                    .iter()
                    .filter(|l| l.source == SOURCE_CIDR)
                    .filter_map(|l| Prefix::parse(&l.key))
                    .max_by_key(|p| p.len);
                // Without a CIDR label, only a /0 selects the bare `world` identities.
                let bare_world = most_specific.is_none()
                    && labels.has(SOURCE_RESERVED, "world")
                    && !labels.iter().any(|l| l.source == SOURCE_FQDN);
                cidrs.iter().any(|(cidr, except)| match most_specific {
                    Some(p) => {
                        cidr.contains_prefix(&p) && !except.iter().any(|e| e.contains_prefix(&p))
                    }
                    None => cidr.len == 0 && bare_world,
                })
            }
            Self::Fqdns(values) => labels
                .iter()
                .any(|l| l.source == SOURCE_FQDN && values.contains(&l.key)),
        }
    }
}

/// One egress rule, resolved.
#[derive(Clone, Debug)]
pub(super) struct CompiledRule {
    /// Where it was written: `CiliumNetworkPolicy default/p spec.egress[1]`.
    pub(super) origin: String,
    pub(super) peer: Peer,
    /// (key template without identity, action); empty `ports` = one L3-only key.
    pub(super) ports: Vec<(Protocol, u16, u8, PolicyAction)>,
}

impl CompiledRule {
    /// The rule's keys and actions for a remote identity.
    pub(super) fn keys(
        &self,
        identity: Identity,
    ) -> impl Iterator<Item = (PolicyKey, PolicyAction)> + '_ {
        self.ports.iter().map(move |(proto, port, len, action)| {
            (
                PolicyKey {
                    identity,
                    proto: *proto,
                    port: *port,
                    port_prefix_len: *len,
                },
                action.clone(),
            )
        })
    }
}

/// A policy rule (`spec` or one of `specs`) resolved.
#[derive(Clone, Debug)]
pub(super) struct CompiledSpec {
    pub(super) subject: EndpointSelector,
    pub(super) default_deny: bool,
    pub(super) has_egress: bool,
    pub(super) rules: Vec<CompiledRule>,
}

fn port_keys(rule: &PortRule) -> Vec<(Protocol, u16, u8)> {
    let mut out = Vec::new();
    for port in &rule.ports {
        let protos: &[Protocol] = match protocol(&port.protocol) {
            Some("TCP") => &[PROTO_TCP],
            Some("UDP") => &[PROTO_UDP],
            Some("SCTP") => &[PROTO_SCTP],
            Some("ICMP") => &[PROTO_ICMP],
            Some("ICMPV6") => &[PROTO_ICMPV6],
            // ANY with a port means the port protocols (Cilium expands it the same way).
            _ => &[PROTO_TCP, PROTO_UDP, PROTO_SCTP],
        };
        let Some(start) = parse_go_uint(&port.port.0).and_then(|p| u16::try_from(p).ok()) else {
            // A named port: no pod spec to resolve it against, so it matches nothing.
            continue;
        };
        let any_proto = protocol(&port.protocol) == Some("ANY");
        if start == 0 {
            if any_proto {
                out.push((0, 0, 0));
            } else {
                out.extend(protos.iter().map(|&p| (p, 0, 0)));
            }
            continue;
        }
        let end = u16::try_from(port.end_port).unwrap_or(0).max(start);
        for (p, len) in port_range_prefixes(start, end) {
            out.extend(protos.iter().map(|&proto| (proto, p, len)));
        }
    }
    out
}

fn cidr_peers(to_cidr: &[String], to_cidr_set: &[CidrRule]) -> Vec<(Prefix, Vec<Prefix>)> {
    let mut out: Vec<(Prefix, Vec<Prefix>)> = to_cidr
        .iter()
        .filter_map(|c| Prefix::parse(c))
        .map(|p| (p, Vec::new()))
        .collect();
    for rule in to_cidr_set {
        if let Some(p) = rule.cidr.as_deref().and_then(Prefix::parse) {
            out.push((
                p,
                rule.except
                    .iter()
                    .filter_map(|e| Prefix::parse(e))
                    .collect(),
            ));
        }
    }
    out
}

impl Compiler {
    pub(super) fn add_policy(&mut self, policy: &NetworkPolicy) -> Result<(), CompileError> {
        let namespace = if policy.is_clusterwide() {
            None
        } else {
            policy.metadata.namespace.as_deref()
        };
        let name = match namespace {
            Some(ns) => format!("{} {ns}/{}", policy.kind, policy.metadata.name),
            None => format!("{} {}", policy.kind, policy.metadata.name),
        };
        for (s, spec) in policy.rules().enumerate() {
            let Some(subject) = &spec.endpoint_selector else {
                continue; // host policies (nodeSelector) are not modelled
            };
            let base = match (policy.spec.is_some(), s) {
                (true, 0) => "spec".to_owned(),
                (true, n) => format!("specs[{}]", n - 1),
                (false, n) => format!("specs[{n}]"),
            };
            let subject = subject_selector(namespace, subject);
            let matches_init = subject.has_key(SOURCE_RESERVED, "init");
            let mut rules = Vec::new();
            for (i, rule) in spec.egress.iter().enumerate() {
                let mut compiled = self.compile_rule(namespace, rule, false, matches_init)?;
                compiled.origin = format!("{name} {base}.egress[{i}]");
                rules.push(compiled);
            }
            for (i, rule) in spec.egress_deny.iter().enumerate() {
                let mut compiled = self.compile_rule(namespace, rule, true, matches_init)?;
                compiled.origin = format!("{name} {base}.egressDeny[{i}]");
                rules.push(compiled);
            }
            self.specs.push(CompiledSpec {
                subject,
                default_deny: spec.enable_default_deny.egress != Some(false),
                has_egress: !spec.egress.is_empty() || !spec.egress_deny.is_empty(),
                rules,
            });
        }
        Ok(())
    }

    fn compile_rule(
        &mut self,
        namespace: Option<&str>,
        rule: &EgressRule,
        deny: bool,
        matches_init: bool,
    ) -> Result<CompiledRule, CompileError> {
        let peer = if !rule.to_endpoints.is_empty() {
            Peer::Selectors(
                rule.to_endpoints
                    .iter()
                    .map(|s| peer_selector(namespace, s, matches_init))
                    .collect(),
            )
        } else if !rule.to_entities.is_empty() {
            let selectors: Vec<EndpointSelector> = rule
                .to_entities
                .iter()
                .filter_map(|e| entity_selectors(e))
                .flatten()
                .collect();
            if selectors.contains(&EndpointSelector::all()) {
                Peer::Any
            } else {
                Peer::Selectors(selectors)
            }
        } else if !rule.to_cidr.is_empty() || !rule.to_cidr_set.is_empty() {
            let cidrs = cidr_peers(&rule.to_cidr, &rule.to_cidr_set);
            for (cidr, except) in &cidrs {
                for prefix in std::iter::once(cidr).chain(except) {
                    self.add_cidr(*prefix)?;
                }
            }
            Peer::Cidrs(cidrs)
        } else if !rule.to_fqdns.is_empty() {
            let mut values = BTreeSet::new();
            for f in &rule.to_fqdns {
                if let Ok(selector) = f.selector() {
                    values.insert(selector.value().to_owned());
                    self.selectors.insert(selector);
                }
            }
            Peer::Fqdns(values)
        } else if !rule.to_services.is_empty()
            || !rule.to_groups.is_empty()
            || !rule.to_nodes.is_empty()
        {
            Peer::Selectors(Vec::new()) // not modelled: selects nothing
        } else {
            Peer::Any
        };
        let mut ports = Vec::new();
        for port_rule in &rule.to_ports {
            let action = if deny {
                PolicyAction::Deny
            } else {
                match port_rule.rules.as_ref().and_then(|r| r.dns.as_ref()) {
                    Some(dns) => PolicyAction::RedirectDns(dns_allow(dns)),
                    None => PolicyAction::Allow,
                }
            };
            for (proto, port, len) in port_keys(port_rule) {
                ports.push((proto, port, len, action.clone()));
            }
        }
        if rule.to_ports.is_empty() && !matches!(&peer, Peer::Selectors(s) if s.is_empty()) {
            // L3 only: every protocol and port of the peers.
            let action = if deny {
                PolicyAction::Deny
            } else {
                PolicyAction::Allow
            };
            ports.push((0, 0, 0, action));
        }
        // An empty egress rule (`{}`) has Peer::Any and no ports: it allows nothing.
        let empty = rule.to_ports.is_empty()
            && rule.to_endpoints.is_empty()
            && rule.to_entities.is_empty()
            && rule.to_cidr.is_empty()
            && rule.to_cidr_set.is_empty()
            && rule.to_fqdns.is_empty()
            && rule.to_services.is_empty()
            && rule.to_groups.is_empty()
            && rule.to_nodes.is_empty();
        if empty {
            ports.clear();
        }
        Ok(CompiledRule {
            origin: String::new(),
            peer,
            ports,
        })
    }

    /// The indices of the specs whose subject selects `labels`.
    pub(super) fn specs_of(&self, labels: &Labels) -> Vec<usize> {
        (0..self.specs.len())
            .filter(|&i| self.specs[i].subject.matches(labels))
            .collect()
    }

    /// The identity-0 entries of an endpoint selected by `specs`, and its default posture.
    pub(super) fn wildcard_entries(&self, specs: &[usize]) -> Vec<(PolicyKey, PolicyAction)> {
        let mut out = Vec::new();
        let default_deny = specs
            .iter()
            .any(|&i| self.specs[i].has_egress && self.specs[i].default_deny);
        if !default_deny {
            out.push((PolicyKey::l3(Identity::ANY), PolicyAction::Allow));
        }
        for &i in specs {
            for rule in &self.specs[i].rules {
                if matches!(rule.peer, Peer::Any) {
                    out.extend(rule.keys(Identity::ANY));
                }
            }
        }
        out
    }

    /// The entries of an endpoint selected by `specs` for one remote identity.
    pub(super) fn identity_entries(
        &self,
        specs: &[usize],
        identity: Identity,
        remote: &Labels,
    ) -> Vec<(PolicyKey, PolicyAction)> {
        let mut out = Vec::new();
        for &i in specs {
            for rule in &self.specs[i].rules {
                if !matches!(rule.peer, Peer::Any) && rule.peer.selects(remote) {
                    out.extend(rule.keys(identity));
                }
            }
        }
        out
    }
}

fn dns_allow(rules: &[crate::manifest::types::DnsRule]) -> DnsAllow {
    let mut out = BTreeSet::new();
    for rule in rules {
        if let Some(name) = rule.match_name.as_deref().filter(|n| !n.is_empty())
            && let Ok(s) = FqdnSelector::match_name(name)
        {
            out.insert(FqdnSelectorKey::from(&s));
        }
        if let Some(pattern) = rule.match_pattern.as_deref().filter(|p| !p.is_empty())
            && let Ok(s) = FqdnSelector::match_pattern(pattern)
        {
            if let FqdnSelector::MatchPattern(p) = &s
                && p.is_match_all()
            {
                // Cilium's proxy: an all-star pattern allows any query name at all.
                return DnsAllow::All;
            }
            out.insert(FqdnSelectorKey::from(&s));
        }
    }
    DnsAllow::Selectors(out)
}
