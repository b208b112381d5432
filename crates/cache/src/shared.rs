//! [`SharedDnsCache`]: one cache that many threads update at once.
//!
//! The cache is split into shards by a hash of the name; each shard is a whole [`DnsCache`] for
//! its names (forward and reverse maps together) behind its own mutex. An update touches one
//! name, so it takes exactly one lock and never holds two: there is no lock order to get wrong
//! and no moment where the forward and reverse maps disagree. Lookups by name take one lock;
//! lookups by IP and GC visit every shard.
//!
//! Why not `dashmap`: it shards one map, but an update here must change the forward map (by
//! name) and the reverse map (by IP) together, which would need two dashmaps and a cross-shard
//! protocol. Sharding whole caches by name keeps every update atomic under one lock, with only
//! the standard library's mutex. The order of concurrent updates does not matter: the entry
//! kept for a pair is the maximum under a total order ([`crate::Entry`]'s superseding rule), so
//! concurrent ingestion ends in the state sequential ingestion reaches.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use foldhash::fast::FixedState;
use fqdnpath_names::Fqdn;

use crate::cache::{CacheConfig, DnsCache, GcOutcome, UpdateOutcome};
use fqdnpath_names::Timestamp;

/// A [`DnsCache`] split into shards by name, safe to update from many threads.
#[derive(Debug)]
pub struct SharedDnsCache {
    config: CacheConfig,
    shards: Box<[Mutex<DnsCache>]>,
    hasher: FixedState,
}

impl SharedDnsCache {
    /// A cache with `shards` shards (at least one; a few per core is plenty).
    pub fn new(config: CacheConfig, shards: usize) -> Self {
        let shards = (0..shards.max(1))
            .map(|_| Mutex::new(DnsCache::new(config)))
            .collect();
        Self {
            config,
            shards,
            hasher: FixedState::with_seed(0x5348_4152_4400_0001),
        }
    }

    /// The settings.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    fn shard(&self, name: &str) -> MutexGuard<'_, DnsCache> {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "the remainder is below shards.len()"
        )]
        let at = (self.hasher.hash_one(name) % self.shards.len() as u64) as usize;
        lock(&self.shards[at])
    }

    /// [`DnsCache::update`] from any thread.
    pub fn update(
        &self,
        lookup_time: Timestamp,
        name: &Fqdn,
        ips: &[IpAddr],
        ttl: u32,
    ) -> UpdateOutcome {
        self.shard(name.as_str())
            .update(lookup_time, name, ips, ttl)
    }

    /// [`DnsCache::lookup`] from any thread.
    pub fn lookup(&self, name: &str, now: Timestamp) -> Vec<IpAddr> {
        self.shard(name).lookup(name, now)
    }

    /// [`DnsCache::lookup_ip`] from any thread (visits every shard).
    pub fn lookup_ip(&self, ip: IpAddr, now: Timestamp) -> Vec<Fqdn> {
        let mut names: Vec<Fqdn> = self
            .shards
            .iter()
            .flat_map(|s| lock(s).lookup_ip(ip, now))
            .collect();
        names.sort_unstable();
        names
    }

    /// [`DnsCache::gc`] over every shard, one at a time.
    pub fn gc(&self, now: Timestamp) -> GcOutcome {
        let mut removed: Vec<_> = self
            .shards
            .iter()
            .flat_map(|s| lock(s).gc(now).removed)
            .collect();
        removed.sort_unstable_by(|a, b| (&a.name, a.ip).cmp(&(&b.name, b.ip)));
        GcOutcome { removed }
    }

    /// How many pairs all shards hold.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Whether no shard holds a pair.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shards merged into one plain cache (names never span shards).
    pub fn to_cache(&self) -> DnsCache {
        let mut out = DnsCache::new(self.config);
        for shard in &self.shards {
            for record in lock(shard).records() {
                out.insert_record(&record);
            }
        }
        out
    }
}

/// A shard's cache stays consistent even if a thread panicked holding the lock: every update
/// is complete before it can panic (it does not), so a poisoned lock is taken over as it is.
fn lock(shard: &Mutex<DnsCache>) -> MutexGuard<'_, DnsCache> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}
