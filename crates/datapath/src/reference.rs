//! The `Datapath` trait and its pure-Rust reference implementation.
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

use fqdnpath_cache::Timestamp;
use fqdnpath_policy::compile::{Compiler, Delta, EndpointId, Prefix};
use fqdnpath_policy::identity::Identity;
use fqdnpath_policy::policymap::{
    DnsAllow, DropReason, MatchType, PolicyAction, PolicyKey, PolicyMap,
};

use crate::conntrack::{Conntrack, Direction, FlowKey4, Live, TcpFlags, Tuple};
use crate::frame::{Parsed, parse_frame};
use crate::lpm::{LpmError, LpmTable};
use fqdnpath_policy::table::FlatTable;

/// A packet, as far as policy cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Packet {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol.
    pub proto: u8,
    /// Source port (0 for protocols without ports).
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// TCP flags.
    pub flags: TcpFlags,
}

impl Packet {
    /// The packet's flow tuple.
    #[inline]
    pub fn tuple(&self) -> Tuple {
        Tuple {
            src: self.src,
            dst: self.dst,
            sport: self.sport,
            dport: self.dport,
            proto: self.proto,
        }
    }
}

/// Hubble's verdicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// `FORWARDED`.
    Forwarded,
    /// `DROPPED`.
    Dropped,
    /// `REDIRECTED` (to the DNS proxy).
    Redirected,
}

impl Verdict {
    /// Hubble's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Forwarded => "FORWARDED",
            Self::Dropped => "DROPPED",
            Self::Redirected => "REDIRECTED",
        }
    }
}

/// One verdict, shaped after Hubble's `Flow`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowEvent {
    /// When.
    pub time: Timestamp,
    /// The verdict.
    pub verdict: Verdict,
    /// Why it was dropped.
    pub drop_reason: Option<DropReason>,
    /// `EGRESS` (true) or `INGRESS`.
    pub egress: bool,
    /// The endpoint on our side, if known.
    pub endpoint: Option<EndpointId>,
    /// The packet.
    pub packet: Packet,
    /// Source identity.
    pub src_identity: Identity,
    /// Destination identity.
    pub dst_identity: Identity,
    /// Whether it answers a tracked flow.
    pub is_reply: bool,
    /// How the policy matched (none for replies and drops without a match).
    pub match_type: Option<MatchType>,
    /// The policy key that decided, if any.
    pub policy_key: Option<PolicyKey>,
    /// For a redirect: the names the DNS proxy allows.
    pub dns: Option<DnsAllow>,
}

/// How full a map is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapUsage {
    /// Entries in use.
    pub used: usize,
    /// `max_entries`.
    pub max: usize,
}

/// The usage of every map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capacity {
    /// The IPv4 ipcache.
    pub ipcache4: MapUsage,
    /// The IPv6 ipcache.
    pub ipcache6: MapUsage,
    /// The policy map (all endpoints).
    pub policy: MapUsage,
    /// Conntrack, IPv4 flows.
    pub conntrack: MapUsage,
    /// Conntrack, IPv6 flows.
    pub conntrack6: MapUsage,
}

/// The sizes of the maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapSizes {
    /// IPv4 ipcache entries.
    pub ipcache4: usize,
    /// IPv6 ipcache entries.
    pub ipcache6: usize,
    /// Policy entries, over all endpoints.
    pub policy: usize,
    /// Tracked flows, IPv4 and IPv6 each.
    pub conntrack: usize,
}

impl Default for MapSizes {
    /// Cilium's defaults: 512k ipcache entries, 16k policy entries per endpoint (here: for the
    /// few endpoints of one node, 64k in all), 256k conntrack entries per family.
    fn default() -> Self {
        Self {
            ipcache4: 512_000,
            ipcache6: 512_000,
            policy: 65_536,
            conntrack: 262_144,
        }
    }
}

/// Why a change could not be applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DatapathError {
    /// A map is full; the datapath now fails closed for the endpoints it affects.
    #[error("the {map} map is full ({max_entries} entries); failing closed")]
    MapFull {
        /// Which map.
        map: &'static str,
        /// Its capacity.
        max_entries: usize,
    },
    /// A prefix is malformed.
    #[error("invalid prefix {prefix}: {reason}")]
    InvalidPrefix {
        /// The prefix.
        prefix: Prefix,
        /// The reason.
        reason: String,
    },
    /// The backend failed (the kernel backend's syscalls).
    #[error("datapath backend: {0}")]
    Backend(String),
}

/// A datapath: maps that can be changed, and packets that can be judged. The reference model
/// implements it in memory; the kernel backend with BPF maps and a TC program.
pub trait Datapath {
    /// Registers a local endpoint's address (its source-address map entry).
    fn set_endpoint(
        &mut self,
        endpoint: EndpointId,
        addr: IpAddr,
        identity: Identity,
    ) -> Result<(), DatapathError>;

    /// Applies map changes in order.
    fn apply(&mut self, deltas: &[Delta]) -> Result<(), DatapathError>;

    /// Judges an egress packet from an endpoint.
    fn egress(&mut self, packet: &Packet, now: Timestamp) -> FlowEvent;

    /// Lets a packet towards an endpoint in (replies, and flows the peer opens).
    fn ingress(&mut self, packet: &Packet, now: Timestamp) -> FlowEvent;

    /// The identity the ipcache gives `addr` (longest prefix; a miss is `world`).
    fn identity_of(&self, addr: IpAddr) -> Identity;

    /// Runs the conntrack GC; returns the live egress (endpoint, destination) pairs.
    fn conntrack_gc(&mut self, now: Timestamp) -> Vec<(EndpointId, IpAddr)>;

    /// The ipcache's entries, sorted.
    fn ipcache_entries(&self) -> Vec<(Prefix, Identity)>;

    /// An endpoint's policy entries, sorted.
    fn policy_entries(&self, endpoint: EndpointId) -> Vec<(PolicyKey, PolicyAction)>;

    /// How full the maps are.
    fn capacity(&self) -> Capacity;

    /// Judges an egress frame as it arrives on the wire: parsed as [`parse_frame`] says, then
    /// judged as [`Datapath::egress`]. `None`: an ARP frame, passed without a verdict.
    fn egress_frame(&mut self, frame: &[u8], now: Timestamp) -> Option<FlowEvent> {
        match parse_frame(frame) {
            Parsed::Ip(packet) => Some(self.egress(&packet, now)),
            Parsed::Arp => None,
            Parsed::Invalid { reason, partial } => {
                Some(invalid_frame_event(&partial, reason, true, now))
            }
        }
    }

    /// Lets an ingress frame in as [`Datapath::ingress`], after the same parsing as
    /// [`Datapath::egress_frame`] (a frame that does not parse is dropped in both directions).
    fn ingress_frame(&mut self, frame: &[u8], now: Timestamp) -> Option<FlowEvent> {
        match parse_frame(frame) {
            Parsed::Ip(packet) => Some(self.ingress(&packet, now)),
            Parsed::Arp => None,
            Parsed::Invalid { reason, partial } => {
                Some(invalid_frame_event(&partial, reason, false, now))
            }
        }
    }

    /// Programs everything `compiler` holds: the endpoints for which `local` is true (their
    /// source-address entries), then the ipcache and the policy maps.
    fn program(
        &mut self,
        compiler: &Compiler,
        local: &dyn Fn(EndpointId) -> bool,
    ) -> Result<(), DatapathError> {
        for (id, ips, identity) in compiler.endpoints() {
            if local(id) {
                for addr in ips {
                    self.set_endpoint(id, *addr, identity)?;
                }
            }
        }
        self.apply(&compiler.full_deltas())
    }
}

/// The event of a frame dropped by the parser: no endpoint, no identities.
pub fn invalid_frame_event(
    partial: &Packet,
    reason: DropReason,
    egress: bool,
    now: Timestamp,
) -> FlowEvent {
    FlowEvent {
        time: now,
        verdict: Verdict::Dropped,
        drop_reason: Some(reason),
        egress,
        endpoint: None,
        packet: *partial,
        src_identity: Identity::ANY,
        dst_identity: Identity::ANY,
        is_reply: false,
        match_type: None,
        policy_key: None,
        dns: None,
    }
}

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
                            other => DatapathError::InvalidPrefix {
                                prefix: *prefix,
                                reason: other.to_string(),
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
