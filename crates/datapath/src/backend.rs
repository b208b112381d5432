//! The [`Datapath`] trait every backend implements (the reference model in this crate, the
//! kernel backend in `fqdnpath-kernel`), with what it speaks: map sizes and usage
//! ([`MapSizes`], [`Capacity`]) and its error ([`DatapathError`]).

use std::net::IpAddr;

use fqdnpath_names::{EndpointId, Timestamp};
use fqdnpath_policy::compile::{Compiler, Delta, Prefix};
use fqdnpath_policy::identity::Identity;
use fqdnpath_policy::policymap::{PolicyAction, PolicyKey};

use crate::flow::{FlowEvent, invalid_frame_event};
use crate::frame::{Parsed, parse_frame};
use crate::packet::Packet;

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

/// A backend's own error, kept whole (with its chain of sources) inside
/// [`DatapathError::Backend`].
pub type BackendError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a change could not be applied.
#[derive(Debug, thiserror::Error)]
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
    /// A prefix is longer than its address is wide.
    #[error("invalid prefix {prefix}: prefix length {} is longer than {bits} bits", prefix.len)]
    InvalidPrefix {
        /// The prefix.
        prefix: Prefix,
        /// The width of its address: 32 or 128.
        bits: u8,
    },
    /// A kind of map change this datapath does not implement (one a newer compiler emits); the
    /// datapath fails closed for every endpoint.
    #[error("a map change this datapath does not implement; failing closed")]
    UnsupportedChange,
    /// The backend failed (the kernel backend's syscalls); its error is the source.
    #[error("datapath backend")]
    Backend(#[source] BackendError),
}

/// Errors compare by what they say: the same variant with the same fields, and for
/// [`DatapathError::Backend`] the same message (a backend's error type need not be comparable),
/// so that two backends can be required to fail alike.
impl PartialEq for DatapathError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                Self::MapFull { map, max_entries },
                Self::MapFull {
                    map: other_map,
                    max_entries: other_entries,
                },
            ) => map == other_map && max_entries == other_entries,
            (
                Self::InvalidPrefix { prefix, bits },
                Self::InvalidPrefix {
                    prefix: other_prefix,
                    bits: other_bits,
                },
            ) => prefix == other_prefix && bits == other_bits,
            (Self::UnsupportedChange, Self::UnsupportedChange) => true,
            (Self::Backend(a), Self::Backend(b)) => a.to_string() == b.to_string(),
            _ => false,
        }
    }
}

impl Eq for DatapathError {}

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
        judge_frame(frame, true, now, |packet| self.egress(packet, now))
    }

    /// Lets an ingress frame in as [`Datapath::ingress`], after the same parsing as
    /// [`Datapath::egress_frame`] (a frame that does not parse is dropped in both directions).
    fn ingress_frame(&mut self, frame: &[u8], now: Timestamp) -> Option<FlowEvent> {
        judge_frame(frame, false, now, |packet| self.ingress(packet, now))
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

/// A frame judged as [`Datapath::egress_frame`] and [`Datapath::ingress_frame`] say: parsed,
/// then an IP packet judged by `judge`; an ARP frame passed without a verdict; a frame that does
/// not parse dropped.
fn judge_frame(
    frame: &[u8],
    egress: bool,
    now: Timestamp,
    judge: impl FnOnce(&Packet) -> FlowEvent,
) -> Option<FlowEvent> {
    match parse_frame(frame) {
        Parsed::Ip(packet) => Some(judge(&packet)),
        Parsed::Arp => None,
        Parsed::Invalid { reason, partial } => {
            Some(invalid_frame_event(&partial, reason, egress, now))
        }
    }
}
