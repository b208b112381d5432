//! DNS observation and the FQDN cache: what Cilium's agent learns from DNS responses.
//!
//! - [`observe`](mod@observe): DNS wire bytes to an [`Observation`] {qname, qtype, rcode, addresses, TTL,
//!   CNAMEs}, the way Cilium's DNS proxy extracts it. Never panics. Two readers:
//!   [`observe::hickory`] (hickory-proto, the reference) and [`observe::fast`], the same
//!   observation without allocating, straight from the wire, for common responses
//!   ([`ObservationBuf`]); it declines the rest to hickory-proto.
//! - [`cache`]: [`DnsCache`], one endpoint's (name, IP) entries with expiry, min TTL, reverse
//!   lookup (its IP-to-names map in `cache/reverse.rs`), GC and the per-name IP cap.
//! - [`zombie`]: [`DnsZombieMappings`], IPs that left the cache but may carry connections.
//! - [`endpoint`]: [`EndpointCaches`], a cache and zombies per endpoint, the global view over
//!   them, and the connection-tracking GC's input.
//! - [`snapshot`]: a stable, versioned serialisation that restores state exactly.
//! - [`shared`]: [`SharedDnsCache`], a sharded cache many threads ingest into at once.
#![forbid(unsafe_code)]

pub mod cache;
pub mod endpoint;
pub mod observe;
pub mod shared;
pub mod snapshot;
pub mod wire;
pub mod zombie;

pub use cache::{CacheConfig, DnsCache, Entry, GcOutcome, Removal, Removed, UpdateOutcome};
pub use endpoint::{DNS_GC_INTERVAL, EndpointCaches, EndpointDns, FqdnConfig};
pub use observe::{
    FastPath, Observation, ObservationBuf, ObserveError, observe, observe_fast, observe_hickory,
    observe_into,
};
pub use shared::SharedDnsCache;
pub use snapshot::{Snapshot, SnapshotError};
pub use zombie::{DnsZombieMappings, Zombie, ZombieConfig, ZombieGc};

/// hickory-proto, whose types ([`hickory_proto::op::ResponseCode`],
/// [`hickory_proto::rr::RecordType`]) appear in [`Observation`].
pub use hickory_proto;

/// The base types, from `fqdnpath-names`, re-exported because the cache's API speaks them.
pub use fqdnpath_names::{EndpointId, Fqdn, Timestamp};
