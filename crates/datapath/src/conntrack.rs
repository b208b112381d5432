//! Connection tracking: which flows are open, so that replies pass and the connection-tracking
//! GC can tell the DNS cache which zombie IPs still carry connections.
//!
//! Lifetimes are Cilium's defaults: an established TCP connection 6 h (21600 s), a TCP
//! connection being opened or closed 60 s and 10 s, any other flow 60 s; every packet of the
//! flow renews the lifetime.

use std::net::IpAddr;
use std::num::NonZeroU64;
use std::time::Duration;

use fqdnpath_names::{EndpointId, Timestamp};
use fqdnpath_policy::identity::Identity;

use fqdnpath_policy::table::{self, FlatKey, FlatTable};

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

impl FlatKey for Tuple {
    /// Both addresses and the ports and protocol, mixed in two multiplies.
    fn hash64(self) -> u64 {
        let ports =
            (u64::from(self.sport) << 24) | (u64::from(self.dport) << 8) | u64::from(self.proto);
        let src = v6_bits(self.src);
        let dst = v6_bits(self.dst);
        #[expect(clippy::cast_possible_truncation, reason = "folding 128-bit addresses")]
        let (s, d) = ((src ^ (src >> 64)) as u64, (dst ^ (dst >> 64)) as u64);
        table::hash128(s, d ^ table::hash128(ports, u64::from(self.src.is_ipv4())))
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

/// A lifetime in nanoseconds, at compile time: renewing an entry on every packet adds a
/// constant instead of converting a `Duration`.
const fn nanos(d: Duration) -> u64 {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "the lifetimes are hours at most"
    )]
    let n = d.as_nanos() as u64;
    n
}

/// Who opened a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The endpoint opened it (egress).
    Egress,
    /// The peer opened it towards the endpoint (ingress).
    Ingress,
}

/// One tracked flow, in 16 bytes (with its IPv4 key, two to a cache line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtEntry {
    /// When it expires unless a packet renews it.
    pub expires: Timestamp,
    /// The remote identity when it was opened.
    pub remote_identity: Identity,
    /// The endpoint on our side.
    pub endpoint: EndpointId,
    /// `INGRESS`, `CLOSING` and `ESTABLISHED` bits.
    state: u8,
}

impl CtEntry {
    /// The peer opened the flow.
    const INGRESS: u8 = 0x1;
    /// A FIN or RST was seen.
    const CLOSING: u8 = 0x2;
    /// A reply was seen (for TCP: the handshake completed).
    const ESTABLISHED: u8 = 0x4;

    /// Who opened it.
    pub fn direction(&self) -> Direction {
        if self.state & Self::INGRESS == 0 {
            Direction::Egress
        } else {
            Direction::Ingress
        }
    }

    /// Whether a FIN or RST was seen.
    pub fn closing(&self) -> bool {
        self.state & Self::CLOSING != 0
    }

    /// Whether the TCP handshake completed (a reply was seen).
    pub fn established(&self) -> bool {
        self.state & Self::ESTABLISHED != 0
    }

    /// The lifetime of each state, in nanoseconds, indexed by [`CtEntry::lifetime_index`].
    const LIFETIMES: [u64; 8] = [
        // Not TCP: whatever the state.
        nanos(ANY_LIFETIME),
        nanos(ANY_LIFETIME),
        nanos(ANY_LIFETIME),
        nanos(ANY_LIFETIME),
        // TCP: opening, closing, established, closing.
        nanos(TCP_SYN_LIFETIME),
        nanos(TCP_CLOSE_LIFETIME),
        nanos(TCP_ESTABLISHED_LIFETIME),
        nanos(TCP_CLOSE_LIFETIME),
    ];

    /// Where the lifetime of the entry's state is in [`CtEntry::LIFETIMES`]: the `CLOSING`
    /// and `ESTABLISHED` bits, and whether the flow is TCP.
    #[inline]
    fn lifetime_index(&self, proto: u8) -> usize {
        usize::from((self.state >> 1) & 0b11) | (usize::from(proto == PROTO_TCP) << 2)
    }

    /// Notes a packet with `flags` at `now`: renews the lifetime, which follows the state
    /// (one table read, no branch: it is on every packet's path).
    #[inline]
    fn renew(&mut self, proto: u8, flags: TcpFlags, now: Timestamp) {
        self.state |= u8::from(flags.fin | flags.rst) * Self::CLOSING;
        let lifetime = Self::LIFETIMES[self.lifetime_index(proto)];
        self.expires = Timestamp::from_nanos(now.as_nanos().saturating_add(lifetime));
    }
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

/// The key of an IPv4 flow: both addresses, both ports and the protocol packed into two
/// machine words. Most flows are IPv4, and conntrack is on every packet's path: this key
/// hashes in one multiply and compares in two, and with its entry fills half a cache line
/// (the marker bit of `rest` gives `Option` its niche).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key4 {
    addrs: u64,
    rest: NonZeroU64,
}

impl FlatKey for Key4 {
    #[inline]
    fn hash64(self) -> u64 {
        table::hash128(self.addrs, self.rest.get())
    }
}

impl Key4 {
    /// Set in every `rest`, outside the fields.
    const MARKER: NonZeroU64 = NonZeroU64::new(1 << 63).unwrap();

    #[inline]
    fn new(src: u32, dst: u32, sport: u16, dport: u16, proto: u8) -> Self {
        Self {
            addrs: (u64::from(src) << 32) | u64::from(dst),
            rest: Self::MARKER
                | (u64::from(sport) << 24)
                | (u64::from(dport) << 8)
                | u64::from(proto),
        }
    }

    #[inline]
    fn of(tuple: &Tuple) -> Option<Self> {
        match (tuple.src, tuple.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => Some(Self::new(
                u32::from(s),
                u32::from(d),
                tuple.sport,
                tuple.dport,
                tuple.proto,
            )),
            _ => None,
        }
    }

    #[expect(clippy::cast_possible_truncation, reason = "unpacks what `new` packed")]
    #[inline]
    fn proto(self) -> u8 {
        self.rest.get() as u8
    }

    #[expect(clippy::cast_possible_truncation, reason = "unpacks what `new` packed")]
    fn tuple(self) -> Tuple {
        let rest = self.rest.get();
        Tuple {
            src: IpAddr::V4(((self.addrs >> 32) as u32).into()),
            dst: IpAddr::V4((self.addrs as u32).into()),
            sport: (rest >> 24) as u16,
            dport: (rest >> 8) as u16,
            proto: rest as u8,
        }
    }
}

/// The key of an IPv4 flow as the table holds it, built from addresses the caller has
/// already matched, without looking at the address family again ([`Conntrack::live_v4`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowKey4(Key4);

impl FlowKey4 {
    /// The key of the IPv4 flow `src:sport -> dst:dport` over `proto`.
    #[inline]
    pub fn new(src: u32, dst: u32, sport: u16, dport: u16, proto: u8) -> Self {
        Self(Key4::new(src, dst, sport, dport, proto))
    }
}

/// The connection-tracking table: IPv4 flows in one hash table, every other flow in another,
/// each holding up to the capacity, as Cilium's `cilium_ct4_global` and `cilium_ct6_global`
/// do.
#[derive(Clone, Debug)]
pub struct Conntrack {
    v4: FlatTable<Key4, CtEntry>,
    other: FlatTable<Tuple, CtEntry>,
    max_entries: usize,
    ingress_opened: bool,
}

/// A live flow's entry, from [`Conntrack::live`].
pub struct Live<'a> {
    entry: &'a mut CtEntry,
    proto: u8,
}

impl Live<'_> {
    /// Records a packet in the flow's opening direction, as [`Conntrack::track`] does for a
    /// live flow: notes a FIN or RST and renews the lifetime.
    #[inline]
    pub fn renew(self, flags: TcpFlags, now: Timestamp) {
        self.entry.renew(self.proto, flags, now);
    }
}

/// The live entry of a slot, a fresh one in place of an expired one, or a new one if the
/// table is not full.
fn open<K: FlatKey>(
    slot: table::Entry<'_, K, CtEntry>,
    fresh: impl FnOnce() -> CtEntry,
    full: bool,
    now: Timestamp,
) -> Option<&mut CtEntry> {
    match slot {
        table::Entry::Occupied(entry) => {
            if now > entry.expires {
                *entry = fresh();
            }
            Some(entry)
        }
        table::Entry::Vacant(_) if full => None,
        table::Entry::Vacant(slot) => Some(slot.insert(fresh())),
    }
}

impl Conntrack {
    /// An empty table holding at most `max_entries` IPv4 flows and as many others.
    pub fn new(max_entries: usize) -> Self {
        Self {
            v4: FlatTable::sparse(),
            // Half full: an IPv6 flow's slot is 64 bytes, and a sparser table costs more in
            // cache misses than its shorter walks save.
            other: FlatTable::new(),
            max_entries,
            ingress_opened: false,
        }
    }

    /// How many flows are tracked.
    #[inline]
    pub fn len(&self) -> usize {
        self.v4.len() + self.other.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many IPv4 flows are tracked (the rest are IPv6).
    pub fn len_v4(&self) -> usize {
        self.v4.len()
    }

    /// Its capacity, for IPv4 flows and for the others each.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    #[inline]
    fn entry_mut(&mut self, tuple: &Tuple) -> Option<&mut CtEntry> {
        match Key4::of(tuple) {
            Some(key) => self.v4.get_mut(key),
            None => self.other.get_mut(*tuple),
        }
    }

    /// The flow opened as `tuple`, if tracked and not expired at `now`.
    pub fn get(&self, tuple: &Tuple, now: Timestamp) -> Option<&CtEntry> {
        match Key4::of(tuple) {
            Some(key) => self.v4.get(key),
            None => self.other.get(*tuple),
        }
        .filter(|e| now <= e.expires)
    }

    /// Records a packet of the flow opened as `tuple` in the opening direction: creates the
    /// entry or renews it. Returns `false` if the table is full (the packet must then be
    /// dropped: an untracked flow's replies would not pass). Never inlined: a verdict's path
    /// calls it only for a flow's first packet, and inlined it would crowd the registers of
    /// the path every packet takes.
    #[inline(never)]
    pub fn track(
        &mut self,
        tuple: Tuple,
        endpoint: EndpointId,
        direction: Direction,
        remote_identity: Identity,
        flags: TcpFlags,
        now: Timestamp,
    ) -> bool {
        let fresh = || CtEntry {
            expires: now,
            remote_identity,
            endpoint,
            state: if direction == Direction::Ingress {
                CtEntry::INGRESS
            } else {
                0
            },
        };
        let max = self.max_entries;
        let entry = if let Some(key) = Key4::of(&tuple) {
            let full = self.v4.len() >= max;
            open(self.v4.entry(key), fresh, full, now)
        } else {
            let full = self.other.len() >= max;
            open(self.other.entry(tuple), fresh, full, now)
        };
        let Some(entry) = entry else {
            return false;
        };
        entry.renew(tuple.proto, flags, now);
        if direction == Direction::Ingress {
            self.ingress_opened = true;
        }
        true
    }

    /// The live entry of the flow opened as `tuple`, to renew with [`Live::renew`] once the
    /// packet is judged: what [`Conntrack::track`] does to a live flow, found before the
    /// verdict so that the table's memory loads while the ipcache and the policy are looked
    /// up. `None`: not tracked or expired (then [`Conntrack::track`] opens it).
    #[inline]
    pub fn live(&mut self, tuple: &Tuple, now: Timestamp) -> Option<Live<'_>> {
        self.entry_mut(tuple)
            .filter(|e| now <= e.expires)
            .map(|entry| Live {
                entry,
                proto: tuple.proto,
            })
    }

    /// [`Conntrack::live`] of an IPv4 flow by its key.
    #[inline]
    pub fn live_v4(&mut self, key: FlowKey4, now: Timestamp) -> Option<Live<'_>> {
        self.v4
            .get_mut(key.0)
            .filter(|e| now <= e.expires)
            .map(|entry| Live {
                entry,
                proto: key.0.proto(),
            })
    }

    /// Whether any flow was ever opened towards an endpoint (until then no egress packet can
    /// be a reply, and the datapath skips that lookup).
    #[inline]
    pub fn has_ingress_flows(&self) -> bool {
        self.ingress_opened
    }

    /// Records a reply packet of the flow opened as `tuple`; returns whether the flow exists.
    pub fn reply(&mut self, tuple: &Tuple, flags: TcpFlags, now: Timestamp) -> bool {
        self.reply_to(tuple, None, flags, now)
    }

    /// Records a reply packet of the flow opened as `tuple` if it exists, is live and (when
    /// `opened_by` is given) was opened in that direction; returns whether it was.
    pub fn reply_to(
        &mut self,
        tuple: &Tuple,
        opened_by: Option<Direction>,
        flags: TcpFlags,
        now: Timestamp,
    ) -> bool {
        let Some(entry) = self.entry_mut(tuple).filter(|e| {
            now <= e.expires && opened_by.is_none_or(|direction| e.direction() == direction)
        }) else {
            return false;
        };
        entry.state |= CtEntry::ESTABLISHED;
        entry.renew(tuple.proto, flags, now);
        true
    }

    /// Forgets a flow (closed and gone).
    pub fn remove(&mut self, tuple: &Tuple) -> Option<CtEntry> {
        match Key4::of(tuple) {
            Some(key) => self.v4.remove(key),
            None => self.other.remove(*tuple),
        }
    }

    /// The GC at `now`: removes expired flows and returns, for the DNS cache's zombies, the
    /// (endpoint, destination) of every live flow the endpoint opened, sorted.
    pub fn gc(&mut self, now: Timestamp) -> Vec<(EndpointId, IpAddr)> {
        self.v4.retain(|_, e| now <= e.expires);
        self.other.retain(|_, e| now <= e.expires);
        let mut alive: Vec<(EndpointId, IpAddr)> = self
            .iter()
            .filter(|(_, e)| e.direction() == Direction::Egress)
            .map(|(t, e)| (e.endpoint, t.dst))
            .collect();
        alive.sort_unstable();
        alive.dedup();
        alive
    }

    fn iter(&self) -> impl Iterator<Item = (Tuple, &CtEntry)> {
        self.v4
            .iter()
            .map(|(k, e)| (k.tuple(), e))
            .chain(self.other.iter().map(|(t, e)| (*t, e)))
    }

    /// Every tracked flow, sorted by tuple.
    pub fn flows(&self) -> Vec<(Tuple, CtEntry)> {
        let mut out: Vec<(Tuple, CtEntry)> = self.iter().map(|(t, e)| (t, *e)).collect();
        out.sort_unstable_by_key(|(t, _)| *t);
        out
    }
}
