//! The per-endpoint policy map, in the logical form the datapath's map holds it, and its
//! lookup exactly as Cilium's `__policy_can_access` (bpf/lib/policy.h) performs it.
//!
//! A key is (remote identity or 0 for "any", protocol or 0 for "any", destination port with a
//! prefix length). The protocol is only wildcarded with the port; a port is only written with
//! its protocol, and can be a prefix (`endPort` ranges become aligned port prefixes). An entry
//! allows, denies, or allows through the DNS proxy (with the DNS rules that apply).
//!
//! Lookup, for a packet to `identity`, `proto`, `port`:
//! 1. the longest match among the keys of `identity`; a deny there wins outright;
//! 2. the longest match among the keys of identity 0 ("L4-only");
//! 3. if both matched: the higher precedence (deny > proxy redirect > allow), then the longer
//!    protocol+port prefix, then the identity-specific one;
//! 4. nothing matched: dropped, `POLICY_DENIED` (133); a chosen deny: `POLICY_DENY` (181).
//!
//! The keys ([`PolicyKey`], with the port ranges they are cut from) are in `policymap/key.rs`,
//! what an entry does ([`PolicyAction`]) in `policymap/action.rs`, and what a lookup answers
//! ([`PolicyVerdict`], [`Decision`], [`MatchType`], [`DropReason`]) in `policymap/verdict.rs`;
//! this file is the map and its lookup.

use std::collections::BTreeMap;

use crate::identity::Identity;
use crate::table::FlatTable;

mod action;
mod key;
mod verdict;

pub use action::{DnsAllow, FqdnSelectorKey, PolicyAction};
pub use key::{
    PROTO_ICMP, PROTO_ICMPV6, PROTO_SCTP, PROTO_TCP, PROTO_UDP, PolicyKey, Protocol,
    port_range_prefixes,
};
pub use verdict::{Decision, DropReason, MatchType, PolicyVerdict};

/// One entry of a policy map's table: its key, its action, and the key's own match type
/// ([`PolicyKey::own_match_type`], read on every verdict: computed when stored).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    key: PolicyKey,
    action: PolicyAction,
    own_match_type: MatchType,
}

impl Entry {
    /// Its key and action.
    fn key_action(&self) -> (PolicyKey, &PolicyAction) {
        (self.key, &self.action)
    }
}

/// How a lookup builds the packed key of one protocol+port prefix length in use.
#[derive(Clone, Copy, Debug)]
struct Probe {
    /// `0xff` to keep the packet's protocol, 0 for the any-protocol key.
    proto: u64,
    /// The port bits the length fixes.
    port_mask: u16,
    /// The key's `port_prefix_len`.
    bits: u8,
}

impl Probe {
    fn of(lpm_prefix_len: u8) -> Self {
        if lpm_prefix_len == 0 {
            return Self {
                proto: 0,
                port_mask: 0,
                bits: 0,
            };
        }
        let bits = lpm_prefix_len - 8;
        Self {
            proto: 0xff,
            port_mask: u16::MAX.checked_shl(16 - u32::from(bits)).unwrap_or(0),
            bits,
        }
    }

    /// The packed key of this length for a packet to `identity` with `proto` and `port`.
    #[inline]
    fn key(self, identity: Identity, proto: Protocol, port: u16) -> u64 {
        (u64::from(identity.0) << 32)
            | ((u64::from(proto) & self.proto) << 24)
            | (u64::from(port & self.port_mask) << 8)
            | u64::from(self.bits)
    }
}

/// One endpoint's egress policy map.
///
/// Stored as a hash table ([`FlatTable`]) plus the set of protocol+port prefix lengths in
/// use, so that a longest-prefix lookup is one hash probe per length in use (typically two or
/// three), like the datapath's LPM trie.
#[derive(Clone, Debug, Default)]
pub struct PolicyMap {
    /// Keyed by [`PolicyKey::packed`].
    entries: FlatTable<u64, Entry>,
    /// How many keys have each `lpm_prefix_len`.
    length_counts: BTreeMap<u8, usize>,
    /// How to probe each length in use, longest first.
    probes: Vec<Probe>,
    /// How many keys are for identity 0 (none: the L4-only lookup is skipped).
    wildcard_keys: usize,
    /// Whether a deny was ever stored (none: allows need no coverage check).
    has_deny: bool,
}

impl PartialEq for PolicyMap {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl Eq for PolicyMap {}

impl PolicyMap {
    /// An empty map (everything dropped).
    pub fn new() -> Self {
        Self::default()
    }

    fn count_length(&mut self, key: PolicyKey, delta: isize) {
        if key.identity == Identity::ANY {
            self.wildcard_keys = self.wildcard_keys.saturating_add_signed(delta);
        }
        let len = key.lpm_prefix_len();
        let count = self.length_counts.entry(len).or_default();
        let was_used = *count > 0;
        *count = count.saturating_add_signed(delta);
        let used = *count > 0;
        if !used {
            self.length_counts.remove(&len);
        }
        // The lookup's list of lengths changes only when a length appears or disappears.
        if was_used != used {
            self.probes = self
                .length_counts
                .keys()
                .rev()
                .map(|&len| Probe::of(len))
                .collect();
        }
    }

    /// Adds `action` at `key`, merged with what the key already holds.
    ///
    /// Deny wins whatever the specificity, as Cilium's policy map computation ensures: an
    /// allow under a broader deny of the same identity is stored as a deny, and a deny turns
    /// the allows it covers into denies. (The lookup then finds a deny on the longest match;
    /// a wildcard-identity deny wins over an identity's allow by precedence.)
    pub fn add(&mut self, key: PolicyKey, action: PolicyAction) {
        let action = if action != PolicyAction::Deny && self.has_deny && self.covering_deny(key) {
            PolicyAction::Deny
        } else {
            action
        };
        if action == PolicyAction::Deny {
            self.has_deny = true;
            let covered: Vec<PolicyKey> = self
                .all()
                .filter(|(k, a)| **a != PolicyAction::Deny && key.covers_key(k))
                .map(|(k, _)| *k)
                .collect();
            for k in covered {
                self.put(k, PolicyAction::Deny);
            }
        }
        let merged = if let Some(old) = self.take(key) {
            old.merge(action)
        } else {
            self.count_length(key, 1);
            action
        };
        self.put(key, merged);
    }

    /// Whether a deny entry of the same identity covers every packet `key` covers.
    fn covering_deny(&self, key: PolicyKey) -> bool {
        self.all()
            .any(|(k, a)| *a == PolicyAction::Deny && k.covers_key(&key))
    }

    /// Sets `key` to `action` (replacing).
    pub fn insert(&mut self, key: PolicyKey, action: PolicyAction) {
        self.has_deny |= action == PolicyAction::Deny;
        if self.put(key, action).is_none() {
            self.count_length(key, 1);
        }
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &PolicyKey) -> Option<PolicyAction> {
        let action = self.take(*key)?;
        self.count_length(*key, -1);
        Some(action)
    }

    /// The action at `key`.
    pub fn get(&self, key: &PolicyKey) -> Option<&PolicyAction> {
        self.entries.get(key.packed()).map(|e| &e.action)
    }

    /// Every entry, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&PolicyKey, &PolicyAction)> {
        let mut all: Vec<(&PolicyKey, &PolicyAction)> = self.all().collect();
        all.sort_unstable_by_key(|(k, _)| **k);
        all.into_iter()
    }

    /// Every entry, in no order.
    fn all(&self) -> impl Iterator<Item = (&PolicyKey, &PolicyAction)> {
        self.entries.iter().map(|(_, e)| (&e.key, &e.action))
    }

    /// Sets `key` to `action` in the table; returns the action it replaced.
    fn put(&mut self, key: PolicyKey, action: PolicyAction) -> Option<PolicyAction> {
        let own_match_type = key.own_match_type();
        self.entries
            .insert(
                key.packed(),
                Entry {
                    key,
                    action,
                    own_match_type,
                },
            )
            .map(|e| e.action)
    }

    /// Removes `key` from the table; returns its action.
    fn take(&mut self, key: PolicyKey) -> Option<PolicyAction> {
        self.entries.remove(key.packed()).map(|e| e.action)
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The longest-prefix match among the keys of `identity`. Always inlined: returned
    /// through memory, its key's narrow fields cost a store-forwarding stall on every packet.
    #[expect(clippy::inline_always, reason = "measured: see the doc comment")]
    #[inline(always)]
    fn longest(&self, identity: Identity, proto: Protocol, port: u16) -> Option<&Entry> {
        // A plain loop: written with `find_map`, a verdict ran 60 instructions more.
        for probe in &self.probes {
            if let Some(e) = self.entries.get(probe.key(identity, proto, port)) {
                return Some(e);
            }
        }
        None
    }

    /// The entry that decides an egress packet to `identity` with `proto` and destination
    /// `port`, if any (none: dropped, `POLICY_DENIED`). [`PolicyMap::lookup`] turns it into
    /// a verdict; the datapath reads it directly, so that a verdict copies nothing it does
    /// not keep. Always inlined: a call would return the decision through memory.
    #[expect(clippy::inline_always, reason = "measured in the verdict bench")]
    #[inline(always)]
    pub fn decide(&self, identity: Identity, proto: Protocol, port: u16) -> Option<Decision<'_>> {
        if self.wildcard_keys == 0 {
            // No identity-0 key (the common case): the identity's own longest match decides,
            // with nothing to weigh it against. Its match type is the key's (not the probe's:
            // for a packet of protocol 0, the any-port probe's key is the L3-only key).
            if identity == Identity::ANY {
                return None;
            }
            return self.longest(identity, proto, port).map(|e| Decision {
                key: e.key,
                action: &e.action,
                match_type: e.own_match_type,
            });
        }
        let l3 = if identity == Identity::ANY {
            None
        } else {
            self.longest(identity, proto, port).map(Entry::key_action)
        };
        let (key, action, specific) = match l3 {
            // A deny on the identity's own keys wins without looking further.
            Some((key, action @ PolicyAction::Deny)) => (key, action, true),
            _ => match (
                l3,
                self.longest(Identity::ANY, proto, port)
                    .map(Entry::key_action),
            ) {
                (Some(a), Some(b)) => {
                    let b_wins = b.1.precedence() > a.1.precedence()
                        || (b.1.precedence() == a.1.precedence()
                            && b.0.lpm_prefix_len() > a.0.lpm_prefix_len());
                    if b_wins {
                        (b.0, b.1, false)
                    } else {
                        (a.0, a.1, true)
                    }
                }
                (Some(a), None) => (a.0, a.1, true),
                (None, Some(b)) => (b.0, b.1, false),
                (None, None) => return None,
            },
        };
        let len = key.lpm_prefix_len();
        let match_type = match (specific, len) {
            (true, l) if l > 8 => MatchType::L3L4,
            (true, l) if l > 0 => MatchType::L3Proto,
            (true, _) => MatchType::L3Only,
            (false, 0) => MatchType::All,
            (false, l) if l <= 8 => MatchType::ProtoOnly,
            (false, _) => MatchType::L4Only,
        };
        Some(Decision {
            key,
            action,
            match_type,
        })
    }

    /// Judges an egress packet to `identity` with `proto` and destination `port`.
    pub fn lookup(&self, identity: Identity, proto: Protocol, port: u16) -> PolicyVerdict {
        let Some(decision) = self.decide(identity, proto, port) else {
            return PolicyVerdict::Dropped {
                reason: DropReason::PolicyDenied,
                key: None,
            };
        };
        decision.verdict()
    }
}
