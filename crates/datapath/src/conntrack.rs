//! Connection tracking: which flows are open, so that replies pass and the connection-tracking
//! GC can tell the DNS cache which zombie IPs still carry connections.
//!
//! Lifetimes are Cilium's defaults: an established TCP connection 6 h (21600 s), a TCP
//! connection being opened or closed 60 s and 10 s, any other flow 60 s; every packet of the
//! flow renews the lifetime.

use std::net::IpAddr;
use std::time::Duration;

use foldhash::fast::FixedState;
use fqdnpath_cache::Timestamp;
use fqdnpath_policy::identity::Identity;
use hashbrown::HashMap;

use crate::PROTO_TCP;

/// Cilium's `bpf-ct-timeout-regular-tcp`.
pub const TCP_ESTABLISHED_LIFETIME: Duration = Duration::from_secs(21_600);
/// Cilium's `bpf-ct-timeout-regular-tcp-syn`.
pub const TCP_SYN_LIFETIME: Duration = Duration::from_secs(60);
/// Cilium's `bpf-ct-timeout-regular-tcp-fin`.
pub const TCP_CLOSE_LIFETIME: Duration = Duration::from_secs(10);
/// Cilium's `bpf-ct-timeout-regular-any`.
pub const ANY_LIFETIME: Duration = Duration::from_secs(60);

/// A flow's 5-tuple in the direction it was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tuple {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Protocol.
    pub proto: u8,
}

impl std::hash::Hash for Tuple {
    /// Hashes the tuple packed into machine words (an IPv4 flow is two `u64`s), which is
    /// cheaper than hashing each field: conntrack is on every packet's path.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let ports =
            (u64::from(self.sport) << 24) | (u64::from(self.dport) << 8) | u64::from(self.proto);
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                state.write_u64((u64::from(u32::from(s)) << 32) | u64::from(u32::from(d)));
                state.write_u64(ports);
            }
            (s, d) => {
                state.write_u128(v6_bits(s));
                state.write_u128(v6_bits(d));
                state.write_u64(ports | (1 << 63));
            }
        }
    }
}

fn v6_bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

impl Tuple {
    /// The same flow seen from the other side.
    #[must_use]
    pub fn reversed(&self) -> Self {
        Self {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            proto: self.proto,
        }
    }
}

/// Who opened a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The endpoint opened it (egress).
    Egress,
    /// The peer opened it towards the endpoint (ingress).
    Ingress,
}

/// One tracked flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtEntry {
    /// The endpoint on our side.
    pub endpoint: u16,
    /// Who opened it.
    pub direction: Direction,
    /// The remote identity when it was opened.
    pub remote_identity: Identity,
    /// When it expires unless a packet renews it.
    pub expires: Timestamp,
    /// A FIN or RST was seen.
    pub closing: bool,
    /// The TCP handshake completed (a reply was seen).
    pub established: bool,
}

/// TCP flags of a packet that matter to tracking.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags {
    /// SYN.
    pub syn: bool,
    /// FIN.
    pub fin: bool,
    /// RST.
    pub rst: bool,
}

/// The connection-tracking table.
#[derive(Clone, Debug)]
pub struct Conntrack {
    flows: HashMap<Tuple, CtEntry, FixedState>,
    max_entries: usize,
    ingress_opened: bool,
}

impl Conntrack {
    /// An empty table holding at most `max_entries` flows.
    pub fn new(max_entries: usize) -> Self {
        Self {
            flows: HashMap::with_hasher(FixedState::default()),
            max_entries,
            ingress_opened: false,
        }
    }

    /// How many flows are tracked.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Its capacity.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// The flow opened as `tuple`, if tracked and not expired at `now`.
    pub fn get(&self, tuple: &Tuple, now: Timestamp) -> Option<&CtEntry> {
        self.flows.get(tuple).filter(|e| now <= e.expires)
    }

    fn lifetime(proto: u8, established: bool, closing: bool) -> Duration {
        match (proto == PROTO_TCP, established, closing) {
            (true, _, true) => TCP_CLOSE_LIFETIME,
            (true, true, false) => TCP_ESTABLISHED_LIFETIME,
            (true, false, false) => TCP_SYN_LIFETIME,
            (false, ..) => ANY_LIFETIME,
        }
    }

    /// Records a packet of the flow opened as `tuple` in the opening direction: creates the
    /// entry or renews it. Returns `false` if the table is full (the packet must then be
    /// dropped: an untracked flow's replies would not pass).
    pub fn track(
        &mut self,
        tuple: Tuple,
        endpoint: u16,
        direction: Direction,
        remote_identity: Identity,
        flags: TcpFlags,
        now: Timestamp,
    ) -> bool {
        let full = self.flows.len() >= self.max_entries;
        let fresh = CtEntry {
            endpoint,
            direction,
            remote_identity,
            expires: now,
            closing: false,
            established: false,
        };
        // One hash lookup: renew a live entry, replace an expired one, or add a new one.
        let entry = match self.flows.entry(tuple) {
            hashbrown::hash_map::Entry::Occupied(slot) => {
                let entry = slot.into_mut();
                if now > entry.expires {
                    *entry = fresh;
                }
                entry
            }
            hashbrown::hash_map::Entry::Vacant(_) if full => return false,
            hashbrown::hash_map::Entry::Vacant(slot) => slot.insert(fresh),
        };
        entry.closing |= flags.fin || flags.rst;
        entry.expires = now + Self::lifetime(tuple.proto, entry.established, entry.closing);
        if direction == Direction::Ingress {
            self.ingress_opened = true;
        }
        true
    }

    /// Whether any flow was ever opened towards an endpoint (until then no egress packet can
    /// be a reply, and the datapath skips that lookup).
    pub fn has_ingress_flows(&self) -> bool {
        self.ingress_opened
    }

    /// Records a reply packet of the flow opened as `tuple`; returns whether the flow exists.
    pub fn reply(&mut self, tuple: &Tuple, flags: TcpFlags, now: Timestamp) -> bool {
        let Some(entry) = self.flows.get_mut(tuple).filter(|e| now <= e.expires) else {
            return false;
        };
        entry.established = true;
        entry.closing |= flags.fin || flags.rst;
        entry.expires = now + Self::lifetime(tuple.proto, true, entry.closing);
        true
    }

    /// Forgets a flow (closed and gone).
    pub fn remove(&mut self, tuple: &Tuple) -> Option<CtEntry> {
        self.flows.remove(tuple)
    }

    /// The GC at `now`: removes expired flows and returns, for the DNS cache's zombies, the
    /// (endpoint, destination) of every live flow the endpoint opened, sorted.
    pub fn gc(&mut self, now: Timestamp) -> Vec<(u16, IpAddr)> {
        self.flows.retain(|_, e| now <= e.expires);
        let mut alive: Vec<(u16, IpAddr)> = self
            .flows
            .iter()
            .filter(|(_, e)| e.direction == Direction::Egress)
            .map(|(t, e)| (e.endpoint, t.dst))
            .collect();
        alive.sort_unstable();
        alive.dedup();
        alive
    }

    /// Every tracked flow, sorted by tuple.
    pub fn flows(&self) -> Vec<(Tuple, CtEntry)> {
        let mut out: Vec<(Tuple, CtEntry)> = self.flows.iter().map(|(t, e)| (*t, *e)).collect();
        out.sort_unstable_by_key(|(t, _)| *t);
        out
    }
}
