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
//!
//! How one policy rule becomes map entries (its peer, its ports and actions, the entries it gives
//! an endpoint) is in `compile/rule.rs`; this file is the compiler's state and its deltas.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use fqdnpath_names::{Fqdn, FqdnSelector, SelectorSet};

use crate::identity::{
    Identity, IdentityAllocator, IdentityError, RESERVED, fqdn_labels, reserved_labels,
};
use crate::labels::{Label, Labels, SOURCE_CIDR, SOURCE_RESERVED};
use crate::manifest::types::NetworkPolicy;
use crate::manifest::validate::{contains, parse_prefix};
use crate::policymap::{PolicyAction, PolicyKey, PolicyMap};

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
#[non_exhaustive]
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

mod rule;

use rule::{CompiledSpec, Peer};

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
