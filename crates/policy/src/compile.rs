//! From policies, endpoints and the DNS cache's global view to the datapath's maps: the
//! ipcache (prefix to identity) and one egress policy map per endpoint, with deltas when the
//! DNS state changes.
//!
//! - Endpoints get identities from their labels; their IPs go into the ipcache as /32 or /128.
//! - Every prefix in a `toCIDR` / `toCIDRSet` (and every `except`) gets a local identity
//!   labelled `cidr:<prefix>` and `reserved:world`, and an ipcache entry.
//! - An IP learned from DNS gets the identity of its set of `fqdn:<selector>` labels (one label
//!   per `toFQDNs` selector matching one of its names, plus `reserved:world`), shared by every
//!   IP with the same set. An IP no selector matches is not inserted (it stays `world`).
//! - An endpoint's egress is default-deny as soon as a rule selecting it has `egress` or
//!   `egressDeny` and does not set `enableDefaultDeny.egress: false`; otherwise everything is
//!   allowed (one any/any/any allow), deny entries still applying.
//!
//! - An IP learned from DNS that lies inside CIDR prefixes the policies name also carries their
//!   `cidr:` labels, so `toCIDR` and `egressDeny` rules keep selecting it behind its /32 entry
//!   (a deny must not be lost to a more specific allow).
//!
//! Known limits, written down: named ports (`port: dns`) are resolved against no pod spec and
//! so match nothing (fail closed); `toServices`, `toGroups`, `toNodes` and ICMP rules select
//! nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use fqdnpath_names::{Fqdn, FqdnSelector, SelectorSet};

use crate::identity::{
    Identity, IdentityAllocator, IdentityError, RESERVED, fqdn_labels, reserved_labels,
};
use crate::labels::{
    EndpointSelector, Label, Labels, SOURCE_CIDR, SOURCE_FQDN, SOURCE_RESERVED, entity_selectors,
    peer_selector, subject_selector,
};
use crate::manifest::types::{CidrRule, EgressRule, NetworkPolicy, PortRule};
use crate::manifest::validate::{contains, parse_go_uint, parse_prefix, protocol};
use crate::policymap::{
    DnsAllow, FqdnSelectorKey, PROTO_ICMP, PROTO_ICMPV6, PROTO_SCTP, PROTO_TCP, PROTO_UDP,
    PolicyAction, PolicyKey, PolicyMap, Protocol, port_range_prefixes,
};

pub use fqdnpath_names::EndpointId;

/// An IP prefix: address (masked) and length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    /// The network address.
    pub addr: IpAddr,
    /// The prefix length.
    pub len: u8,
}

impl Prefix {
    /// The prefix of one address (/32 or /128).
    pub fn host(addr: IpAddr) -> Self {
        Self {
            addr,
            len: if addr.is_ipv4() { 32 } else { 128 },
        }
    }

    /// Parses `addr/len` or a plain address, masking the address.
    pub fn parse(text: &str) -> Option<Self> {
        let (addr, len) = if let Some(p) = parse_prefix(text) {
            p
        } else {
            let addr: IpAddr = text.parse().ok()?;
            (addr, if addr.is_ipv4() { 32 } else { 128 })
        };
        Some(Self {
            addr: mask(addr, len),
            len,
        })
    }

    /// Whether `other` lies within this prefix.
    pub fn contains_prefix(&self, other: &Self) -> bool {
        other.len >= self.len && contains((self.addr, self.len), other.addr)
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

/// A pod as the compiler sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Its endpoint ID on its node.
    pub id: EndpointId,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its Kubernetes labels.
    pub labels: BTreeMap<String, String>,
    /// Its IPs.
    pub ips: Vec<IpAddr>,
}

/// A change to the maps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delta {
    /// Put `prefix -> identity` in the ipcache.
    IpcacheUpsert {
        /// The prefix.
        prefix: Prefix,
        /// Its identity.
        identity: Identity,
    },
    /// Remove `prefix` from the ipcache.
    IpcacheDelete {
        /// The prefix.
        prefix: Prefix,
    },
    /// Put an entry in an endpoint's policy map.
    PolicyUpsert {
        /// The endpoint.
        endpoint: EndpointId,
        /// The key.
        key: PolicyKey,
        /// The action.
        action: PolicyAction,
    },
    /// Remove an entry from an endpoint's policy map.
    PolicyDelete {
        /// The endpoint.
        endpoint: EndpointId,
        /// The key.
        key: PolicyKey,
    },
}

/// Why compilation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    /// Identities ran out.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// Two endpoints share an ID.
    #[error("endpoint ID {0} is used twice")]
    DuplicateEndpoint(EndpointId),
}

/// The remote side of a rule.
#[derive(Clone, Debug)]
enum Peer {
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
    fn selects(&self, labels: &Labels) -> bool {
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
struct CompiledRule {
    /// Where it was written: `CiliumNetworkPolicy default/p spec.egress[1]`.
    origin: String,
    peer: Peer,
    /// (key template without identity, action); empty `ports` = one L3-only key.
    ports: Vec<(Protocol, u16, u8, PolicyAction)>,
}

impl CompiledRule {
    /// The rule's keys and actions for a remote identity.
    fn keys(&self, identity: Identity) -> impl Iterator<Item = (PolicyKey, PolicyAction)> + '_ {
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
struct CompiledSpec {
    subject: EndpointSelector,
    default_deny: bool,
    has_egress: bool,
    rules: Vec<CompiledRule>,
}

/// The compiler's state: inputs resolved, identities allocated, maps built.
#[derive(Debug)]
pub struct Compiler {
    allocator: IdentityAllocator,
    specs: Vec<CompiledSpec>,
    endpoints: BTreeMap<EndpointId, (Endpoint, Labels, Identity)>,
    /// Every identity a rule may select, with its labels.
    identities: BTreeMap<Identity, Labels>,
    selectors: SelectorSet,
    /// Per learned IP: its names, and its identity if a selector matched.
    fqdn_ips: BTreeMap<IpAddr, (BTreeSet<Fqdn>, Option<Identity>)>,
    ipcache: BTreeMap<Prefix, Identity>,
    policy: BTreeMap<EndpointId, PolicyMap>,
    /// Per endpoint, the indices of the specs that select it.
    endpoint_specs: BTreeMap<EndpointId, Vec<usize>>,
    /// Every prefix a `toCIDR`/`toCIDRSet` names (`except` included), with its identity.
    cidrs: BTreeMap<Prefix, Identity>,
    /// The (family, length) pairs of `cidrs`.
    cidr_lengths: BTreeSet<(bool, u8)>,
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
    /// Compiles `policies` (validated, as loaded) for `endpoints`.
    pub fn new(policies: &[NetworkPolicy], endpoints: &[Endpoint]) -> Result<Self, CompileError> {
        let mut compiler = Self {
            allocator: IdentityAllocator::new(),
            specs: Vec::new(),
            endpoints: BTreeMap::new(),
            identities: RESERVED
                .iter()
                .filter_map(|(id, _)| reserved_labels(*id).map(|l| (*id, l)))
                .collect(),
            selectors: SelectorSet::new(),
            fqdn_ips: BTreeMap::new(),
            ipcache: BTreeMap::new(),
            policy: BTreeMap::new(),
            endpoint_specs: BTreeMap::new(),
            cidrs: BTreeMap::new(),
            cidr_lengths: BTreeSet::new(),
        };
        for policy in policies {
            compiler.add_policy(policy)?;
        }
        for endpoint in endpoints {
            if compiler.endpoints.contains_key(&endpoint.id) {
                return Err(CompileError::DuplicateEndpoint(endpoint.id));
            }
            let labels = Labels::pod(&endpoint.namespace, &endpoint.labels);
            let identity = compiler.allocator.allocate(&labels)?;
            compiler.identities.insert(identity, labels.clone());
            for ip in &endpoint.ips {
                compiler.ipcache.insert(Prefix::host(*ip), identity);
            }
            compiler
                .endpoints
                .insert(endpoint.id, (endpoint.clone(), labels, identity));
        }
        compiler.build_maps();
        Ok(compiler)
    }

    fn add_policy(&mut self, policy: &NetworkPolicy) -> Result<(), CompileError> {
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

    fn add_cidr(&mut self, prefix: Prefix) -> Result<(), CompileError> {
        if self.cidrs.contains_key(&prefix) {
            return Ok(());
        }
        let labels: Labels = [
            Label::new(SOURCE_CIDR, &prefix.to_string(), ""),
            Label::new(SOURCE_RESERVED, "world", ""),
        ]
        .into_iter()
        .collect();
        let identity = self.allocator.allocate(&labels)?;
        self.identities.insert(identity, labels);
        self.cidrs.insert(prefix, identity);
        self.cidr_lengths
            .insert((prefix.addr.is_ipv4(), prefix.len));
        if prefix.len > 0 {
            self.ipcache.insert(prefix, identity);
        }
        Ok(())
    }

    /// The policy CIDR prefixes that hold `ip`: one lookup per prefix length in use.
    fn cidrs_holding(&self, ip: IpAddr) -> Vec<Prefix> {
        self.cidr_lengths
            .iter()
            .filter(|(v4, _)| *v4 == ip.is_ipv4())
            .map(|&(_, len)| Prefix {
                addr: mask(ip, len),
                len,
            })
            .filter(|p| self.cidrs.contains_key(p))
            .collect()
    }

    /// The indices of the specs whose subject selects `labels`.
    fn specs_of(&self, labels: &Labels) -> Vec<usize> {
        (0..self.specs.len())
            .filter(|&i| self.specs[i].subject.matches(labels))
            .collect()
    }

    /// The identity-0 entries of an endpoint selected by `specs`, and its default posture.
    fn wildcard_entries(&self, specs: &[usize]) -> Vec<(PolicyKey, PolicyAction)> {
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
    fn identity_entries(
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

    /// Builds every endpoint's map. Each rule's peer is evaluated once against every identity
    /// (Cilium's selector cache does the same), then shared by the endpoints the rule applies
    /// to.
    fn build_maps(&mut self) {
        let selected: Vec<Vec<Vec<Identity>>> = self
            .specs
            .iter()
            .map(|spec| {
                spec.rules
                    .iter()
                    .map(|rule| match rule.peer {
                        Peer::Any => Vec::new(),
                        ref peer => self
                            .identities
                            .iter()
                            .filter(|(_, l)| peer.selects(l))
                            .map(|(id, _)| *id)
                            .collect(),
                    })
                    .collect()
            })
            .collect();
        let mut maps = BTreeMap::new();
        for (id, (_, labels, _)) in &self.endpoints {
            let specs = self.specs_of(labels);
            let mut map = PolicyMap::new();
            for (key, action) in self.wildcard_entries(&specs) {
                map.add(key, action);
            }
            for &i in &specs {
                for (rule, identities) in self.specs[i].rules.iter().zip(&selected[i]) {
                    for identity in identities {
                        for (key, action) in rule.keys(*identity) {
                            map.add(key, action);
                        }
                    }
                }
            }
            maps.insert(*id, (map, specs));
        }
        for (id, (map, specs)) in maps {
            self.policy.insert(id, map);
            self.endpoint_specs.insert(id, specs);
        }
    }

    /// Everything the maps hold, as upserts (to program an empty datapath).
    pub fn full_deltas(&self) -> Vec<Delta> {
        let mut out: Vec<Delta> = self
            .ipcache
            .iter()
            .map(|(prefix, identity)| Delta::IpcacheUpsert {
                prefix: *prefix,
                identity: *identity,
            })
            .collect();
        for (endpoint, map) in &self.policy {
            out.extend(map.iter().map(|(key, action)| Delta::PolicyUpsert {
                endpoint: *endpoint,
                key: *key,
                action: action.clone(),
            }));
        }
        out
    }

    /// Every endpoint: (ID, its IPs, its identity), in ID order.
    pub fn endpoints(&self) -> impl Iterator<Item = (EndpointId, &[IpAddr], Identity)> {
        self.endpoints
            .iter()
            .map(|(id, (e, _, identity))| (*id, e.ips.as_slice(), *identity))
    }

    /// The ipcache: prefix to identity (a miss is `world`).
    pub fn ipcache(&self) -> &BTreeMap<Prefix, Identity> {
        &self.ipcache
    }

    /// The egress policy map of endpoint `id`.
    pub fn policy_map(&self, id: EndpointId) -> Option<&PolicyMap> {
        self.policy.get(&id)
    }

    /// The identity of endpoint `id`.
    pub fn endpoint_identity(&self, id: EndpointId) -> Option<Identity> {
        self.endpoints.get(&id).map(|e| e.2)
    }

    /// The labels of `identity`.
    pub fn identity_labels(&self, identity: Identity) -> Option<&Labels> {
        self.identities.get(&identity)
    }

    /// The identity the ipcache gives `ip` (longest prefix; `world` on a miss).
    pub fn identity_of(&self, ip: IpAddr) -> Identity {
        self.ipcache
            .iter()
            .filter(|(p, _)| contains((p.addr, p.len), ip))
            .max_by_key(|(p, _)| p.len)
            .map_or(Identity::WORLD, |(_, id)| *id)
    }

    /// Sets the names the DNS cache's global view holds for `ip` (none: the IP left) and
    /// returns the map changes. Only this IP's ipcache entry changes, plus the policy entries
    /// of an identity that appears or disappears with it.
    pub fn update_ip(
        &mut self,
        ip: IpAddr,
        names: BTreeSet<Fqdn>,
    ) -> Result<Vec<Delta>, CompileError> {
        let mut deltas = Vec::new();
        let mut values = BTreeSet::new();
        for name in &names {
            self.selectors.for_each_match(name.as_str(), |id| {
                if let Some(s) = self.selectors.get(id) {
                    values.insert(s.value().to_owned());
                }
            });
        }
        let new_labels = (!values.is_empty()).then(|| {
            // The CIDR prefixes of the policies that hold the IP label it too, so that
            // `toCIDR` and `egressDeny` rules still select it behind its /32 FQDN entry.
            let mut labels = fqdn_labels(values.iter().map(String::as_str));
            for prefix in self.cidrs_holding(ip) {
                labels.insert(Label::new(SOURCE_CIDR, &prefix.to_string(), ""));
            }
            labels
        });
        let old = self.fqdn_ips.get(&ip).and_then(|(_, id)| *id);
        let old_labels = old.and_then(|id| self.identities.get(&id).cloned());
        if old_labels == new_labels {
            if names.is_empty() {
                self.fqdn_ips.remove(&ip);
            } else {
                self.fqdn_ips.insert(ip, (names, old));
            }
            return Ok(deltas);
        }
        let prefix = Prefix::host(ip);
        let new = match &new_labels {
            Some(labels) => {
                let existed = self.allocator.lookup(labels);
                let id = self.allocator.allocate(labels)?;
                if existed.is_none() {
                    self.identities.insert(id, labels.clone());
                    deltas.extend(self.add_identity_entries(id));
                }
                Some(id)
            }
            None => None,
        };
        if let Some(id) = new {
            self.ipcache.insert(prefix, id);
            deltas.push(Delta::IpcacheUpsert {
                prefix,
                identity: id,
            });
        } else if let Some(&identity) = self.cidrs.get(&prefix) {
            // The IP is itself a policy prefix: it goes back to its CIDR identity.
            self.ipcache.insert(prefix, identity);
            deltas.push(Delta::IpcacheUpsert { prefix, identity });
        } else {
            self.ipcache.remove(&prefix);
            deltas.push(Delta::IpcacheDelete { prefix });
        }
        if let Some(old) = old
            && self.allocator.release(old)
        {
            self.identities.remove(&old);
            deltas.extend(self.remove_identity_entries(old));
        }
        if names.is_empty() {
            self.fqdn_ips.remove(&ip);
        } else {
            self.fqdn_ips.insert(ip, (names, new));
        }
        Ok(deltas)
    }

    fn add_identity_entries(&mut self, identity: Identity) -> Vec<Delta> {
        let mut deltas = Vec::new();
        let Some(remote) = self.identities.get(&identity) else {
            return deltas;
        };
        let mut fresh: Vec<(EndpointId, PolicyMap)> = Vec::new();
        for (id, specs) in &self.endpoint_specs {
            let mut map = PolicyMap::new();
            for (key, action) in self.identity_entries(specs, identity, remote) {
                map.add(key, action);
            }
            if !map.is_empty() {
                fresh.push((*id, map));
            }
        }
        for (id, map) in fresh {
            let target = self.policy.entry(id).or_default();
            for (key, action) in map.iter() {
                target.insert(*key, action.clone());
                deltas.push(Delta::PolicyUpsert {
                    endpoint: id,
                    key: *key,
                    action: action.clone(),
                });
            }
        }
        deltas
    }

    fn remove_identity_entries(&mut self, identity: Identity) -> Vec<Delta> {
        let mut deltas = Vec::new();
        for (id, map) in &mut self.policy {
            let keys: Vec<PolicyKey> = map
                .iter()
                .filter(|(k, _)| k.identity == identity)
                .map(|(k, _)| *k)
                .collect();
            for key in keys {
                map.remove(&key);
                deltas.push(Delta::PolicyDelete { endpoint: *id, key });
            }
        }
        deltas
    }

    /// The rules behind the policy-map entry `key` of `endpoint`: where each rule that
    /// contributes to it was written. For `fqdnpath explain`.
    pub fn rules_behind(&self, endpoint: EndpointId, key: &PolicyKey) -> Vec<String> {
        let Some(specs) = self.endpoint_specs.get(&endpoint) else {
            return Vec::new();
        };
        let remote = self.identities.get(&key.identity);
        let mut out = Vec::new();
        for &i in specs {
            for rule in &self.specs[i].rules {
                let selects = match (&rule.peer, remote) {
                    (Peer::Any, _) => key.identity == Identity::ANY,
                    (peer, Some(labels)) => peer.selects(labels),
                    (_, None) => false,
                };
                if selects && rule.keys(key.identity).any(|(k, _)| k == *key) {
                    out.push(rule.origin.clone());
                }
            }
        }
        if out.is_empty() && *key == PolicyKey::l3(Identity::ANY) {
            out.push(
                "no policy enables default deny for this endpoint's egress: everything is allowed"
                    .into(),
            );
        }
        out
    }

    /// The policies that select `endpoint` (where they were written), and whether its egress
    /// is default-deny.
    pub fn selecting(&self, endpoint: EndpointId) -> (Vec<String>, bool) {
        let Some(specs) = self.endpoint_specs.get(&endpoint) else {
            return (Vec::new(), false);
        };
        let mut names: Vec<String> = specs
            .iter()
            .flat_map(|&i| self.specs[i].rules.iter().map(|r| r.origin.clone()))
            .collect();
        names.dedup();
        let deny = specs
            .iter()
            .any(|&i| self.specs[i].has_egress && self.specs[i].default_deny);
        (names, deny)
    }

    /// Every FQDN selector of the policies (for the DNS proxy and for display).
    pub fn fqdn_selectors(&self) -> impl Iterator<Item = &FqdnSelector> {
        self.selectors.iter().map(|(_, s)| s)
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
