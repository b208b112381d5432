//! The per-endpoint policy map against a naive list of (key, action) scanned linearly, with
//! the lookup rule written again from the module's documentation:
//!
//! 1. the longest match among the packet identity's own keys; a deny there wins outright;
//! 2. the longest match among identity 0's keys;
//! 3. both matched: the higher precedence (deny > DNS redirect > allow), then the longer
//!    protocol+port prefix, then the identity's own key;
//! 4. no match: dropped, `POLICY_DENIED`; a chosen deny: dropped, `POLICY_DENY`.
//!
//! Raw `insert`/`remove` and the normalising `add` are mixed at random; verdicts (with their
//! keys and match types), stored entries and lengths must agree after every operation. While
//! only `add` has written the map, no allow may override a deny's coverage: every entry a deny
//! covers is a deny, and every packet a deny of its identity (or of identity 0) covers is
//! dropped with `POLICY_DENY`.
#![no_main]

use std::collections::BTreeSet;

use arbitrary::Arbitrary;
use fqdnpath_policy::identity::Identity;
use fqdnpath_policy::policymap::{
    DnsAllow, DropReason, FqdnSelectorKey, MatchType, PolicyAction, PolicyKey, PolicyMap,
    PolicyVerdict, Protocol,
};
use libfuzzer_sys::fuzz_target;

/// Few identities, protocols and ports, so that keys overlap.
const IDENTITIES: [u32; 3] = [0, 256, 16_777_217];
const KEY_PROTOS: [Protocol; 3] = [0, 6, 17];
const PACKET_PROTOS: [Protocol; 5] = [0, 1, 6, 17, 132];
const BASE_PORTS: [u16; 4] = [53, 443, 8080, 0xFFF0];
const SELECTORS: [(bool, &str); 3] = [
    (false, "a.example.com."),
    (true, "*.example.com."),
    (true, "*"),
];

#[derive(Debug, Arbitrary)]
struct KeySpec {
    identity: u8,
    proto: u8,
    port: u8,
    noise: u16,
    prefix_len: u8,
}

/// A key in the documented form: identity 0 or a remote one; protocol 0 with port 0/0, or a
/// protocol with a port prefix whose first port is aligned to it.
fn key(spec: &KeySpec) -> PolicyKey {
    let identity = Identity(IDENTITIES[usize::from(spec.identity) % IDENTITIES.len()]);
    let proto = KEY_PROTOS[usize::from(spec.proto) % KEY_PROTOS.len()];
    if proto == 0 {
        return PolicyKey {
            identity,
            proto,
            port: 0,
            port_prefix_len: 0,
        };
    }
    let port_prefix_len = spec.prefix_len % 17;
    let port = BASE_PORTS[usize::from(spec.port) % BASE_PORTS.len()] ^ (spec.noise & 0x1F);
    PolicyKey {
        identity,
        proto,
        port: first_port(port, port_prefix_len),
        port_prefix_len,
    }
}

/// The first port of the `len`-bit prefix holding `port`.
fn first_port(port: u16, len: u8) -> u16 {
    if len == 0 {
        0
    } else {
        let drop = 16 - u32::from(len);
        (port >> drop) << drop
    }
}

#[derive(Debug, Arbitrary)]
enum ActionSpec {
    Allow,
    Deny,
    RedirectAll,
    Redirect(u8),
}

fn action(spec: &ActionSpec) -> PolicyAction {
    match spec {
        ActionSpec::Allow => PolicyAction::Allow,
        ActionSpec::Deny => PolicyAction::Deny,
        ActionSpec::RedirectAll => PolicyAction::RedirectDns(DnsAllow::All),
        ActionSpec::Redirect(bits) => PolicyAction::RedirectDns(DnsAllow::Selectors(
            SELECTORS
                .iter()
                .enumerate()
                .filter(|(i, _)| bits & (1 << i) != 0)
                .map(|(_, &(pattern, value))| FqdnSelectorKey {
                    pattern,
                    value: value.to_owned(),
                })
                .collect(),
        )),
    }
}

#[derive(Debug, Arbitrary)]
enum PortSpec {
    Any(u16),
    /// Inside (or next to) a held key's prefix.
    NearKey {
        index: u8,
        noise: u16,
        keep: u8,
    },
}

#[derive(Debug, Arbitrary)]
enum Op {
    Insert(KeySpec, ActionSpec),
    Remove(KeySpec),
    /// Removes a held key.
    RemoveHeld(u8),
    Add(KeySpec, ActionSpec),
    Get(KeySpec),
    Lookup {
        identity: u8,
        proto: u8,
        port: PortSpec,
    },
}

/// The naive map.
#[derive(Default)]
struct Naive {
    entries: Vec<(PolicyKey, PolicyAction)>,
}

/// How many protocol and port bits a key fixes.
fn prefix_bits(k: PolicyKey) -> u8 {
    if k.proto == 0 {
        0
    } else {
        8 + k.port_prefix_len
    }
}

/// Whether key `k` matches a packet with `proto` and `port`.
fn key_matches(k: PolicyKey, proto: Protocol, port: u16) -> bool {
    k.proto == 0 || (k.proto == proto && first_port(port, k.port_prefix_len) == k.port)
}

/// Whether `outer` matches every packet `inner` matches (same identity).
fn key_covers(outer: PolicyKey, inner: PolicyKey) -> bool {
    outer.identity == inner.identity
        && (outer.proto == 0
            || (outer.proto == inner.proto
                && outer.port_prefix_len <= inner.port_prefix_len
                && first_port(inner.port, outer.port_prefix_len) == outer.port))
}

/// Deny 3, redirect 2, allow 1.
fn rank(a: &PolicyAction) -> u8 {
    match a {
        PolicyAction::Deny => 3,
        PolicyAction::RedirectDns(_) => 2,
        PolicyAction::Allow => 1,
    }
}

fn merged(old: &PolicyAction, new: &PolicyAction) -> PolicyAction {
    use PolicyAction::{Allow, Deny, RedirectDns};
    match (old, new) {
        (Deny, _) | (_, Deny) => Deny,
        (Allow, Allow) => Allow,
        (RedirectDns(DnsAllow::Selectors(a)), RedirectDns(DnsAllow::Selectors(b))) => {
            let union: BTreeSet<FqdnSelectorKey> = a.union(b).cloned().collect();
            RedirectDns(DnsAllow::Selectors(union))
        }
        (RedirectDns(_), _) | (_, RedirectDns(_)) => RedirectDns(DnsAllow::All),
    }
}

impl Naive {
    fn at(&self, key: PolicyKey) -> Option<usize> {
        self.entries.iter().position(|(k, _)| *k == key)
    }

    fn insert(&mut self, key: PolicyKey, action: PolicyAction) {
        match self.at(key) {
            Some(i) => self.entries[i].1 = action,
            None => self.entries.push((key, action)),
        }
    }

    fn remove(&mut self, key: PolicyKey) -> Option<PolicyAction> {
        self.at(key).map(|i| self.entries.remove(i).1)
    }

    fn add(&mut self, key: PolicyKey, action: PolicyAction) {
        let under_deny = self
            .entries
            .iter()
            .any(|(k, a)| *a == PolicyAction::Deny && key_covers(*k, key));
        let action = if under_deny {
            PolicyAction::Deny
        } else {
            action
        };
        if action == PolicyAction::Deny {
            for (k, a) in &mut self.entries {
                if key_covers(key, *k) {
                    *a = PolicyAction::Deny;
                }
            }
        }
        match self.at(key) {
            Some(i) => self.entries[i].1 = merged(&self.entries[i].1, &action),
            None => self.entries.push((key, action)),
        }
    }

    fn longest(
        &self,
        identity: Identity,
        proto: Protocol,
        port: u16,
    ) -> Option<&(PolicyKey, PolicyAction)> {
        self.entries
            .iter()
            .filter(|(k, _)| k.identity == identity && key_matches(*k, proto, port))
            .max_by_key(|(k, _)| prefix_bits(*k))
    }

    fn lookup(&self, identity: Identity, proto: Protocol, port: u16) -> PolicyVerdict {
        let own = if identity == Identity::ANY {
            None
        } else {
            self.longest(identity, proto, port)
        };
        let chosen = match own {
            Some(entry @ (_, PolicyAction::Deny)) => Some((entry, true)),
            _ => match (own, self.longest(Identity::ANY, proto, port)) {
                (None, None) => None,
                (Some(o), None) => Some((o, true)),
                (None, Some(w)) => Some((w, false)),
                (Some(o), Some(w)) => {
                    let wildcard_first = rank(&w.1) > rank(&o.1)
                        || (rank(&w.1) == rank(&o.1) && prefix_bits(w.0) > prefix_bits(o.0));
                    Some(if wildcard_first {
                        (w, false)
                    } else {
                        (o, true)
                    })
                }
            },
        };
        let Some(((key, action), own_key)) = chosen else {
            return PolicyVerdict::Dropped {
                reason: DropReason::PolicyDenied,
                key: None,
            };
        };
        let key = *key;
        let match_type = match (own_key, key.proto == 0, key.port_prefix_len) {
            (true, true, _) => MatchType::L3Only,
            (true, false, 0) => MatchType::L3Proto,
            (true, false, _) => MatchType::L3L4,
            (false, true, _) => MatchType::All,
            (false, false, 0) => MatchType::ProtoOnly,
            (false, false, _) => MatchType::L4Only,
        };
        match action {
            PolicyAction::Deny => PolicyVerdict::Dropped {
                reason: DropReason::PolicyDeny,
                key: Some(key),
            },
            PolicyAction::Allow => PolicyVerdict::Allowed { key, match_type },
            PolicyAction::RedirectDns(dns) => PolicyVerdict::Redirected {
                key,
                match_type,
                dns: dns.clone(),
            },
        }
    }

    fn port(&self, spec: &PortSpec) -> u16 {
        match *spec {
            PortSpec::Any(p) => p,
            PortSpec::NearKey { index, noise, keep } => {
                let Some((k, _)) = self
                    .entries
                    .get(usize::from(index) % self.entries.len().max(1))
                else {
                    return noise;
                };
                let keep = keep % 17;
                first_port(k.port, keep) | (noise & !first_port(u16::MAX, keep))
            }
        }
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut map = PolicyMap::new();
    let mut naive = Naive::default();
    // Whether only `add` (and removals) wrote the map so far.
    let mut normalised = true;
    for op in ops.iter().take(128) {
        match op {
            Op::Insert(k, a) => {
                let (k, a) = (key(k), action(a));
                map.insert(k, a.clone());
                naive.insert(k, a);
                normalised = false;
            }
            Op::Remove(k) => {
                let k = key(k);
                assert_eq!(map.remove(&k), naive.remove(k), "remove {k}");
            }
            Op::RemoveHeld(i) => {
                if !naive.entries.is_empty() {
                    let k = naive.entries[usize::from(*i) % naive.entries.len()].0;
                    let want = naive.remove(k);
                    assert!(want.is_some());
                    assert_eq!(map.remove(&k), want, "remove {k}");
                }
            }
            Op::Add(k, a) => {
                let (k, a) = (key(k), action(a));
                map.add(k, a.clone());
                naive.add(k, a);
            }
            Op::Get(k) => {
                let k = key(k);
                assert_eq!(map.get(&k), naive.at(k).map(|i| &naive.entries[i].1));
            }
            Op::Lookup {
                identity,
                proto,
                port,
            } => {
                let identity = Identity(IDENTITIES[usize::from(*identity) % IDENTITIES.len()]);
                let proto = PACKET_PROTOS[usize::from(*proto) % PACKET_PROTOS.len()];
                let port = naive.port(port);
                let got = map.lookup(identity, proto, port);
                assert_eq!(
                    got,
                    naive.lookup(identity, proto, port),
                    "lookup identity={identity} proto={proto} port={port}"
                );
                let denied = naive.entries.iter().any(|(k, a)| {
                    *a == PolicyAction::Deny
                        && (k.identity == identity || k.identity == Identity::ANY)
                        && key_matches(*k, proto, port)
                });
                if normalised && denied {
                    assert!(
                        matches!(
                            got,
                            PolicyVerdict::Dropped {
                                reason: DropReason::PolicyDeny,
                                ..
                            }
                        ),
                        "a deny covers identity={identity} proto={proto} port={port}: {got:?}"
                    );
                }
            }
        }
        assert_eq!(map.len(), naive.entries.len());
        assert_eq!(map.is_empty(), naive.entries.is_empty());
        let mut want: Vec<(PolicyKey, PolicyAction)> = naive.entries.clone();
        want.sort_by_key(|(k, _)| *k);
        let got: Vec<(PolicyKey, PolicyAction)> =
            map.iter().map(|(k, a)| (*k, a.clone())).collect();
        assert_eq!(got, want);
        if normalised {
            for (d, _) in naive
                .entries
                .iter()
                .filter(|(_, a)| *a == PolicyAction::Deny)
            {
                for (k, a) in &naive.entries {
                    assert!(
                        !key_covers(*d, *k) || *a == PolicyAction::Deny,
                        "deny {d} covers {k}, which holds {a:?}"
                    );
                }
            }
        }
    }
    // Equal contents make equal maps, whatever the history.
    let mut rebuilt = PolicyMap::new();
    for (k, a) in &naive.entries {
        rebuilt.insert(*k, a.clone());
    }
    assert_eq!(rebuilt, map);
});
