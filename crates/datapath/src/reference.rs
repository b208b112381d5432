//! [`ReferenceDatapath`]: the pure-Rust implementation of the [`Datapath`] trait, the model the
//! kernel backend is checked against.
//!
//! An egress packet from an endpoint is judged like this:
//! 1. the source address must be a known endpoint (else dropped, `INVALID_SOURCE_IP`);
//! 2. a packet answering a flow the peer opened towards the endpoint is a reply: it passes;
//! 3. otherwise the destination's identity comes from the ipcache (longest prefix; a miss is
//!    `world`), and the endpoint's policy map decides ([`PolicyMap::lookup`]), for every packet
//!    of a flow, not only the first, so a connection is cut when its IP loses its identity;
//! 4. a forwarded packet opens or renews its conntrack entry.
//!
//! Packets towards an endpoint (`ingress`) are not judged (ingress policy is not enforced yet):
//! they pass, as replies when they answer a flow the endpoint opened.
//!
//! Maps have capacities like BPF maps. A change that does not fit is an error, and the
//! datapath fails closed: from then on every egress packet of the affected endpoints (all of
//! them, for the ipcache) is dropped, `POLICY_DENIED`, until the maps are rebuilt (a new
//! datapath).

use std::collections::BTreeMap;
use std::net::IpAddr;

use fqdnpath_names::{EndpointId, Timestamp};
use fqdnpath_policy::compile::{Delta, Prefix};
use fqdnpath_policy::identity::Identity;
use fqdnpath_policy::policymap::{
    DnsAllow, DropReason, MatchType, PolicyAction, PolicyKey, PolicyMap,
};

use fqdnpath_policy::table::FlatTable;

use crate::backend::{Capacity, Datapath, DatapathError, MapSizes, MapUsage};
use crate::conntrack::{Conntrack, Direction, FlowKey4, Live, Tuple};
use crate::flow::{FlowEvent, Verdict};
use crate::lpm::{LpmError, LpmTable};
use crate::packet::Packet;

/// The identity the ipcache tables give `addr` (a miss is `world`).
#[expect(clippy::inline_always, reason = "measured: see the doc comment")]
#[inline(always)]
fn lookup_identity(
    ipcache4: &LpmTable<u32, Identity>,
    ipcache6: &LpmTable<u128, Identity>,
    addr: IpAddr,
) -> Identity {
    let hit = match addr {
        IpAddr::V4(a) => ipcache4.lookup(u32::from(a)).map(|(_, id)| *id),
        IpAddr::V6(a) => ipcache6.lookup(u128::from(a)).map(|(_, id)| *id),
    };
    hit.unwrap_or(Identity::WORLD)
}

/// The reference datapath, in memory.
#[derive(Clone, Debug)]
pub struct ReferenceDatapath {
    sizes: MapSizes,
    /// Local endpoints by address, IPv4 and IPv6 apart so that the lookup on every packet
    /// hashes one integer.
    endpoints4: FlatTable<u32, Local>,
    endpoints6: FlatTable<u128, Local>,
    ipcache4: LpmTable<u32, Identity>,
    ipcache6: LpmTable<u128, Identity>,
    /// Each endpoint's policy, at the slot `slots` gives it (a local endpoint's entry carries
    /// its slot, so a verdict needs no lookup by endpoint id).
    policies: Vec<EndpointPolicy>,
    slots: BTreeMap<EndpointId, usize>,
    policy_entries: usize,
    conntrack: Conntrack,
    /// Every endpoint fails closed after an ipcache change did not fit.
    ipcache_failed: bool,
}

/// What the datapath does with a packet: the parts of its [`FlowEvent`] a verdict decides.
#[derive(Clone, Copy)]
struct Judged<'p> {
    verdict: Verdict,
    drop_reason: Option<DropReason>,
    is_reply: bool,
    match_type: Option<MatchType>,
    policy_key: Option<PolicyKey>,
    /// Borrowed from the policy map: cloned into the event only for a redirect.
    dns: Option<&'p DnsAllow>,
}

impl Judged<'_> {
    /// A reply of a tracked flow: forwarded without a policy lookup.
    fn reply() -> Self {
        Self {
            verdict: Verdict::Forwarded,
            drop_reason: None,
            is_reply: true,
            match_type: None,
            policy_key: None,
            dns: None,
        }
    }

    fn dropped(reason: DropReason) -> Self {
        Self {
            verdict: Verdict::Dropped,
            drop_reason: Some(reason),
            is_reply: false,
            match_type: None,
            policy_key: None,
            dns: None,
        }
    }
}

/// How the verdict's path finds a flow's conntrack entry: by its IPv4 key on the IPv4 path,
/// by its tuple on the general one (a trait, so that each path gets its own code).
trait Flow {
    fn live<'c>(&self, conntrack: &'c mut Conntrack, now: Timestamp) -> Option<Live<'c>>;
}

impl Flow for FlowKey4 {
    #[inline]
    fn live<'c>(&self, conntrack: &'c mut Conntrack, now: Timestamp) -> Option<Live<'c>> {
        conntrack.live_v4(*self, now)
    }
}

impl Flow for Tuple {
    #[inline]
    fn live<'c>(&self, conntrack: &'c mut Conntrack, now: Timestamp) -> Option<Live<'c>> {
        conntrack.live(self, now)
    }
}

/// A local endpoint, as its address's entry holds it.
#[derive(Clone, Copy, Debug)]
struct Local {
    endpoint: EndpointId,
    identity: Identity,
    slot: usize,
}

/// One endpoint's policy map.
#[derive(Clone, Debug, Default)]
struct EndpointPolicy {
    map: PolicyMap,
    /// A policy change for it did not fit: it fails closed.
    failed: bool,
}

impl Default for ReferenceDatapath {
    fn default() -> Self {
        Self::new(MapSizes::default())
    }
}

impl ReferenceDatapath {
    /// Empty maps of these sizes.
    pub fn new(sizes: MapSizes) -> Self {
        Self {
            sizes,
            endpoints4: FlatTable::new(),
            endpoints6: FlatTable::new(),
            ipcache4: LpmTable::new(sizes.ipcache4),
            ipcache6: LpmTable::new(sizes.ipcache6),
            policies: Vec::new(),
            slots: BTreeMap::new(),
            policy_entries: 0,
            conntrack: Conntrack::new(sizes.conntrack),
            ipcache_failed: false,
        }
    }

    /// The identity the ipcache gives `addr` (a miss is `world`).
    pub fn identity_of(&self, addr: IpAddr) -> Identity {
        lookup_identity(&self.ipcache4, &self.ipcache6, addr)
    }

    /// The conntrack table.
    pub fn conntrack(&self) -> &Conntrack {
        &self.conntrack
    }

    /// The local endpoint at `addr`. Always inlined, as every step of a verdict: returned
    /// through memory, its result would wait on a store.
    #[expect(clippy::inline_always, reason = "measured: see the doc comment")]
    #[inline(always)]
    fn local(&self, addr: IpAddr) -> Option<Local> {
        match addr {
            IpAddr::V4(a) => self.endpoints4.get(u32::from(a)).copied(),
            IpAddr::V6(a) => self.endpoints6.get(u128::from(a)).copied(),
        }
    }

    /// The slot of `endpoint`'s policy, made if it has none yet.
    fn slot(&mut self, endpoint: EndpointId) -> usize {
        *self.slots.entry(endpoint).or_insert_with(|| {
            self.policies.push(EndpointPolicy::default());
            self.policies.len() - 1
        })
    }

    fn ipcache_insert(&mut self, prefix: Prefix, identity: Identity) -> Result<(), LpmError> {
        match prefix.addr {
            IpAddr::V4(a) => self.ipcache4.insert(u32::from(a), prefix.len, identity),
            IpAddr::V6(a) => self.ipcache6.insert(u128::from(a), prefix.len, identity),
        }
        .map(|_| ())
    }

    fn ipcache_remove(&mut self, prefix: Prefix) {
        match prefix.addr {
            IpAddr::V4(a) => self.ipcache4.remove(u32::from(a), prefix.len),
            IpAddr::V6(a) => self.ipcache6.remove(u128::from(a), prefix.len),
        };
    }

    /// Judges an egress packet of a local endpoint: the destination's identity, and what
    /// happens to the packet.
    #[inline]
    fn judge_egress(
        &mut self,
        packet: &Packet,
        local: Local,
        now: Timestamp,
    ) -> (Identity, Judged<'_>) {
        let tuple = packet.tuple();
        // A reply to a flow the peer opened towards us passes.
        if self.conntrack.has_ingress_flows()
            && self.conntrack.reply_to(
                &tuple.reversed(),
                Some(Direction::Ingress),
                packet.flags,
                now,
            )
        {
            return (self.identity_of(packet.dst), Judged::reply());
        }
        let remote = lookup_identity(&self.ipcache4, &self.ipcache6, packet.dst);
        (remote, self.judge_flow(packet, local, &tuple, remote, now))
    }

    /// Steps 3 and 4 of a packet that is not a reply, from the flow's key and the
    /// destination's identity.
    #[expect(clippy::inline_always, reason = "measured in the verdict bench")]
    #[inline(always)]
    fn judge_flow(
        &mut self,
        packet: &Packet,
        local: Local,
        flow: &impl Flow,
        remote: Identity,
        now: Timestamp,
    ) -> Judged<'_> {
        let live = flow.live(&mut self.conntrack, now);
        let policy = &self.policies[local.slot];
        if self.ipcache_failed || policy.failed {
            return Judged::dropped(DropReason::PolicyDenied);
        }
        let Some(decision) = policy.map.decide(remote, packet.proto, packet.dport) else {
            return Judged::dropped(DropReason::PolicyDenied);
        };
        let (verdict, dns) = match decision.action {
            PolicyAction::Deny => {
                return Judged {
                    policy_key: Some(decision.key),
                    ..Judged::dropped(DropReason::PolicyDeny)
                };
            }
            PolicyAction::Allow => (Verdict::Forwarded, None),
            PolicyAction::RedirectDns(dns) => (Verdict::Redirected, Some(dns)),
        };
        let tracked = match live {
            Some(live) => {
                live.renew(packet.flags, now);
                true
            }
            None => self.conntrack.track(
                packet.tuple(),
                local.endpoint,
                Direction::Egress,
                remote,
                packet.flags,
                now,
            ),
        };
        if !tracked {
            // Untrackable: its replies could not pass. Fail closed, with Cilium's reason.
            return Judged::dropped(DropReason::CtMapInsertionFailed);
        }
        Judged {
            verdict,
            drop_reason: None,
            is_reply: false,
            match_type: Some(decision.match_type),
            policy_key: Some(decision.key),
            dns,
        }
    }

    /// [`Datapath::egress`] of any packet: every step, for either family.
    #[inline(never)]
    fn egress_any(&mut self, packet: &Packet, now: Timestamp) -> FlowEvent {
        let local = self.local(packet.src);
        let (remote, judged) = match local {
            Some(local) => self.judge_egress(packet, local, now),
            None => (
                self.identity_of(packet.dst),
                Judged::dropped(DropReason::InvalidSourceIp),
            ),
        };
        Self::egress_event(packet, now, local, remote, judged)
    }

    /// The event of a judged egress packet, built once, in place: a verdict moves no event
    /// around.
    #[expect(clippy::inline_always, reason = "measured in the verdict bench")]
    #[inline(always)]
    fn egress_event(
        packet: &Packet,
        now: Timestamp,
        local: Option<Local>,
        remote: Identity,
        judged: Judged<'_>,
    ) -> FlowEvent {
        FlowEvent {
            time: now,
            verdict: judged.verdict,
            drop_reason: judged.drop_reason,
            egress: true,
            endpoint: local.map(|l| l.endpoint),
            packet: *packet,
            src_identity: local.map_or(Identity::ANY, |l| l.identity),
            dst_identity: remote,
            is_reply: judged.is_reply,
            match_type: judged.match_type,
            policy_key: judged.policy_key,
            dns: judged.dns.cloned(),
        }
    }

    fn event(
        packet: &Packet,
        now: Timestamp,
        egress: bool,
        endpoint: Option<(EndpointId, Identity)>,
        remote: Identity,
    ) -> FlowEvent {
        let (src_identity, dst_identity) = match (egress, endpoint) {
            (true, Some((_, id))) => (id, remote),
            (false, Some((_, id))) => (remote, id),
            // The remote side is the destination on egress and the source on ingress.
            (true, None) => (Identity::ANY, remote),
            (false, None) => (remote, Identity::ANY),
        };
        FlowEvent {
            time: now,
            verdict: Verdict::Dropped,
            drop_reason: None,
            egress,
            endpoint: endpoint.map(|e| e.0),
            packet: *packet,
            src_identity,
            dst_identity,
            is_reply: false,
            match_type: None,
            policy_key: None,
            dns: None,
        }
    }
}

impl Datapath for ReferenceDatapath {
    fn set_endpoint(
        &mut self,
        endpoint: EndpointId,
        addr: IpAddr,
        identity: Identity,
    ) -> Result<(), DatapathError> {
        let local = Local {
            endpoint,
            identity,
            slot: self.slot(endpoint),
        };
        match addr {
            IpAddr::V4(a) => self.endpoints4.insert(u32::from(a), local),
            IpAddr::V6(a) => self.endpoints6.insert(u128::from(a), local),
        };
        Ok(())
    }

    fn apply(&mut self, deltas: &[Delta]) -> Result<(), DatapathError> {
        let mut first_error = None;
        for delta in deltas {
            match delta {
                Delta::IpcacheUpsert { prefix, identity } => {
                    if let Err(e) = self.ipcache_insert(*prefix, *identity) {
                        self.ipcache_failed = true;
                        let error = match e {
                            LpmError::Full { max_entries } => DatapathError::MapFull {
                                map: if prefix.addr.is_ipv4() {
                                    "ipcache4"
                                } else {
                                    "ipcache6"
                                },
                                max_entries,
                            },
                            LpmError::BadLength { bits, .. } => DatapathError::InvalidPrefix {
                                prefix: *prefix,
                                bits,
                            },
                        };
                        first_error.get_or_insert(error);
                    }
                }
                Delta::IpcacheDelete { prefix } => self.ipcache_remove(*prefix),
                Delta::PolicyUpsert {
                    endpoint,
                    key,
                    action,
                } => {
                    let slot = self.slot(*endpoint);
                    let policy = &mut self.policies[slot];
                    if policy.map.get(key).is_none() {
                        if self.policy_entries >= self.sizes.policy {
                            policy.failed = true;
                            first_error.get_or_insert(DatapathError::MapFull {
                                map: "policy",
                                max_entries: self.sizes.policy,
                            });
                            continue;
                        }
                        self.policy_entries += 1;
                    }
                    policy.map.insert(*key, action.clone());
                }
                Delta::PolicyDelete { endpoint, key } => {
                    if let Some(&slot) = self.slots.get(endpoint)
                        && self.policies[slot].map.remove(key).is_some()
                    {
                        self.policy_entries -= 1;
                    }
                }
                _ => {
                    self.ipcache_failed = true;
                    first_error.get_or_insert(DatapathError::UnsupportedChange);
                }
            }
        }
        // Failing closed is sticky: a later change that fits does not bring back what did
        // not fit (a missing deny must never turn into an allow).
        first_error.map_or(Ok(()), Err)
    }

    fn egress(&mut self, packet: &Packet, now: Timestamp) -> FlowEvent {
        // The common case, an IPv4 packet of a local endpoint while no flow was opened towards
        // an endpoint (so it cannot be a reply), on its own path: the address family is
        // matched once, and the registers are not shared with the general path's.
        if let (IpAddr::V4(src), IpAddr::V4(dst)) = (packet.src, packet.dst)
            && !self.conntrack.has_ingress_flows()
            && let Some(&local) = self.endpoints4.get(u32::from(src))
        {
            let dst = u32::from(dst);
            let flow = FlowKey4::new(
                u32::from(src),
                dst,
                packet.sport,
                packet.dport,
                packet.proto,
            );
            let remote = self
                .ipcache4
                .lookup(dst)
                .map_or(Identity::WORLD, |(_, id)| *id);
            let judged = self.judge_flow(packet, local, &flow, remote, now);
            return Self::egress_event(packet, now, Some(local), remote, judged);
        }
        self.egress_any(packet, now)
    }

    fn ingress(&mut self, packet: &Packet, now: Timestamp) -> FlowEvent {
        let remote = self.identity_of(packet.src);
        let endpoint = self.local(packet.dst).map(|l| (l.endpoint, l.identity));
        let mut event = Self::event(packet, now, false, endpoint, remote);
        event.verdict = Verdict::Forwarded;
        let tuple = packet.tuple();
        if self.conntrack.reply(&tuple.reversed(), packet.flags, now) {
            event.is_reply = true;
        } else if let Some((id, _)) = endpoint {
            // Ingress policy is not enforced yet: the flow is let in and tracked so that the
            // endpoint's answers pass as replies.
            self.conntrack
                .track(tuple, id, Direction::Ingress, remote, packet.flags, now);
        }
        event
    }

    fn identity_of(&self, addr: IpAddr) -> Identity {
        ReferenceDatapath::identity_of(self, addr)
    }

    fn conntrack_gc(&mut self, now: Timestamp) -> Vec<(EndpointId, IpAddr)> {
        self.conntrack.gc(now)
    }

    fn ipcache_entries(&self) -> Vec<(Prefix, Identity)> {
        let mut out: Vec<(Prefix, Identity)> = self
            .ipcache4
            .iter()
            .map(|(a, len, id)| {
                (
                    Prefix {
                        addr: IpAddr::V4(a.into()),
                        len,
                    },
                    *id,
                )
            })
            .chain(self.ipcache6.iter().map(|(a, len, id)| {
                (
                    Prefix {
                        addr: IpAddr::V6(a.into()),
                        len,
                    },
                    *id,
                )
            }))
            .collect();
        out.sort();
        out
    }

    fn policy_entries(&self, endpoint: EndpointId) -> Vec<(PolicyKey, PolicyAction)> {
        self.slots
            .get(&endpoint)
            .map(|&slot| {
                self.policies[slot]
                    .map
                    .iter()
                    .map(|(k, a)| (*k, a.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn capacity(&self) -> Capacity {
        Capacity {
            ipcache4: MapUsage {
                used: self.ipcache4.len(),
                max: self.ipcache4.max_entries(),
            },
            ipcache6: MapUsage {
                used: self.ipcache6.len(),
                max: self.ipcache6.max_entries(),
            },
            policy: MapUsage {
                used: self.policy_entries,
                max: self.sizes.policy,
            },
            conntrack: MapUsage {
                used: self.conntrack.len_v4(),
                max: self.conntrack.max_entries(),
            },
            conntrack6: MapUsage {
                used: self.conntrack.len() - self.conntrack.len_v4(),
                max: self.conntrack.max_entries(),
            },
        }
    }
}
