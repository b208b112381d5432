//! Per-endpoint caches and the global view over them (Cilium's `DNSHistory` and `DNSZombies` per
//! endpoint, and the name manager's global cache).
//!
//! Each endpoint (pod) learns only from its own DNS responses. The datapath however sees the
//! union: an IP learned by one pod serves every pod whose policy selects that name. This leak is
//! Cilium's behaviour and is reproduced on purpose: [`EndpointCaches::global_ips`] and
//! [`EndpointCaches::global_names`] are that union, over every endpoint's cache entries (valid or
//! expired: a pair leaves the datapath only when the DNS GC removes it, not at its expiry
//! instant) and every endpoint's zombies.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use fqdnpath_names::{EndpointId, Fqdn, Timestamp};

use crate::cache::{CacheConfig, DnsCache, GcOutcome, UpdateOutcome};
use crate::observe::Observation;
use crate::observe::ObservationBuf;
use crate::zombie::{DnsZombieMappings, ZombieConfig, ZombieGc};

/// Cilium's DNS GC interval (`DNSGCJobInterval`), fixed at one minute.
#[doc(alias = "DNSGCJobInterval")]
pub const DNS_GC_INTERVAL: Duration = Duration::from_secs(60);

/// Every FQDN setting of the agent, with Cilium's flag names and defaults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FqdnConfig {
    /// `tofqdns-min-ttl` and `tofqdns-endpoint-max-ip-per-hostname`.
    pub cache: CacheConfig,
    /// `tofqdns-max-deferred-connection-deletes` and `tofqdns-idle-connection-grace-period`.
    pub zombies: ZombieConfig,
}

impl FqdnConfig {
    /// The settings from Cilium's four flags.
    pub fn new(
        min_ttl: u32,
        max_ips_per_hostname: usize,
        max_deferred_connection_deletes: usize,
        idle_connection_grace_period: Duration,
    ) -> Self {
        Self {
            cache: CacheConfig {
                min_ttl,
                max_ips_per_hostname,
            },
            zombies: ZombieConfig {
                max_deferred_connection_deletes,
                idle_connection_grace_period,
                max_ips_per_hostname,
            },
        }
    }
}

/// One endpoint's cache and zombies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointDns {
    /// What the endpoint resolved (`DNSHistory`).
    pub cache: DnsCache,
    /// IPs whose entries left the cache but may carry connections (`DNSZombies`).
    pub zombies: DnsZombieMappings,
}

/// What one endpoint's DNS GC did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointGc {
    /// The pairs that left the cache (they became zombies first).
    pub cache: GcOutcome,
    /// The zombies' verdicts.
    pub zombies: ZombieGc,
}

impl EndpointDns {
    /// Empty, with these settings.
    pub fn new(config: FqdnConfig) -> Self {
        Self {
            cache: DnsCache::new(config.cache),
            zombies: DnsZombieMappings::new(config.zombies),
        }
    }

    /// Learns from a response the proxy allowed, observed at `now`: only NOERROR with at least
    /// one address changes anything. A pair new to the cache takes its name off a zombie of
    /// that IP (the fresh lookup revives it).
    pub fn observe(&mut self, now: Timestamp, observation: &Observation) -> UpdateOutcome {
        if !observation.is_learnable() {
            return UpdateOutcome::default();
        }
        self.update(
            now,
            &observation.qname,
            &observation.addresses,
            observation.ttl,
        )
    }

    /// [`Self::observe`] from reusable buffers, the outcome written into `outcome` (cleared
    /// first): refreshing a name the cache holds allocates nothing once `outcome` is warm.
    pub fn observe_into(
        &mut self,
        now: Timestamp,
        observation: &ObservationBuf,
        outcome: &mut UpdateOutcome,
    ) {
        self.cache.observe_into(now, observation, outcome);
        if !outcome.added.is_empty() {
            let name = Fqdn::new(observation.qname());
            self.zombies
                .forget_names(now, &name, observation.addresses());
        }
    }

    /// Records that `name` resolved to `ips` with `ttl` at `now` (see [`Self::observe`]).
    pub fn update(
        &mut self,
        now: Timestamp,
        name: &Fqdn,
        ips: &[IpAddr],
        ttl: u32,
    ) -> UpdateOutcome {
        let outcome = self.cache.update(now, name, ips, ttl);
        if !outcome.added.is_empty() {
            self.zombies.forget_names(now, name, ips);
        }
        outcome
    }

    /// The DNS GC at `now`: the cache's GC, whose removed pairs become zombies pending since
    /// `max(now, expiry)`, then the zombies' GC.
    pub fn gc(&mut self, now: Timestamp) -> EndpointGc {
        let cache = self.cache.gc(now);
        for r in &cache.removed {
            self.zombies
                .upsert(now.max(r.entry.expiry), r.ip, std::slice::from_ref(&r.name));
        }
        let zombies = self.zombies.gc();
        EndpointGc { cache, zombies }
    }
}

/// Every endpoint's cache and zombies on one node, and the global view over them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointCaches {
    config: FqdnConfig,
    endpoints: BTreeMap<EndpointId, EndpointDns>,
}

impl EndpointCaches {
    /// No endpoints yet; each gets these settings.
    pub fn new(config: FqdnConfig) -> Self {
        Self {
            config,
            endpoints: BTreeMap::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &FqdnConfig {
        &self.config
    }

    /// The state of `endpoint`, if it has any.
    pub fn endpoint(&self, endpoint: EndpointId) -> Option<&EndpointDns> {
        self.endpoints.get(&endpoint)
    }

    /// The state of `endpoint`, created empty if needed.
    pub fn endpoint_mut(&mut self, endpoint: EndpointId) -> &mut EndpointDns {
        let config = self.config;
        self.endpoints
            .entry(endpoint)
            .or_insert_with(|| EndpointDns::new(config))
    }

    /// Every endpoint with state, in ID order.
    pub fn endpoints(&self) -> impl Iterator<Item = (EndpointId, &EndpointDns)> {
        self.endpoints.iter().map(|(id, dns)| (*id, dns))
    }

    /// Forgets an endpoint (its pod is gone). Returns its state.
    pub fn remove_endpoint(&mut self, endpoint: EndpointId) -> Option<EndpointDns> {
        self.endpoints.remove(&endpoint)
    }

    /// Learns from a response observed for `endpoint` at `now` (see [`EndpointDns::observe`]).
    pub fn observe(
        &mut self,
        endpoint: EndpointId,
        now: Timestamp,
        observation: &Observation,
    ) -> UpdateOutcome {
        if !observation.is_learnable() {
            return UpdateOutcome::default();
        }
        self.endpoint_mut(endpoint).observe(now, observation)
    }

    /// [`Self::observe`] from reusable buffers (see [`EndpointDns::observe_into`]).
    pub fn observe_into(
        &mut self,
        endpoint: EndpointId,
        now: Timestamp,
        observation: &ObservationBuf,
        outcome: &mut UpdateOutcome,
    ) {
        // Checked here too, so that a response nothing is learned from makes no endpoint state.
        if observation.is_learnable() {
            self.endpoint_mut(endpoint)
                .observe_into(now, observation, outcome);
        } else {
            outcome.clear();
        }
    }

    /// The DNS GC at `now` over every endpoint.
    pub fn gc(&mut self, now: Timestamp) -> BTreeMap<EndpointId, EndpointGc> {
        self.endpoints
            .iter_mut()
            .map(|(id, dns)| (*id, dns.gc(now)))
            .collect()
    }

    /// A completed connection-tracking GC pass that started at `start` and found live egress
    /// connections from `endpoint` to `ip` for each pair of `live`: marks those zombies alive at
    /// `start` plus the grace period, then records the pass on every endpoint.
    pub fn ct_gc(
        &mut self,
        start: Timestamp,
        live: impl IntoIterator<Item = (EndpointId, IpAddr)>,
    ) {
        let alive_at = start + self.config.zombies.idle_connection_grace_period;
        for (endpoint, ip) in live {
            if let Some(dns) = self.endpoints.get_mut(&endpoint) {
                dns.zombies.mark_alive(alive_at, ip);
            }
        }
        for dns in self.endpoints.values_mut() {
            dns.zombies.set_ct_gc_time(start);
        }
    }

    /// The global view: every IP that any endpoint holds for `name` (normalised), in its cache
    /// (expired or not, until GC) or as a zombie.
    pub fn global_ips(&self, name: &str) -> BTreeSet<IpAddr> {
        let mut out = BTreeSet::new();
        for dns in self.endpoints.values() {
            out.extend(dns.cache.ips_of(name));
            for zombie in dns.zombies.iter() {
                if zombie.names.iter().any(|n| n.as_str() == name) {
                    out.insert(zombie.ip);
                }
            }
        }
        out
    }

    /// The global view: every name that any endpoint holds `ip` for, in its cache (expired or
    /// not, until GC) or as a zombie.
    pub fn global_names(&self, ip: IpAddr) -> BTreeSet<Fqdn> {
        let mut out = BTreeSet::new();
        for dns in self.endpoints.values() {
            out.extend(dns.cache.names_of(ip).iter().cloned());
            if let Some(zombie) = dns.zombies.get(ip) {
                out.extend(zombie.names.iter().cloned());
            }
        }
        out
    }

    /// The global view as (name, IP) pairs, sorted.
    pub fn global_pairs(&self) -> BTreeSet<(Fqdn, IpAddr)> {
        let mut out = BTreeSet::new();
        for dns in self.endpoints.values() {
            for record in dns.cache.records() {
                out.insert((record.name, record.ip));
            }
            for zombie in dns.zombies.iter() {
                for name in &zombie.names {
                    out.insert((name.clone(), zombie.ip));
                }
            }
        }
        out
    }

    pub(crate) fn insert_endpoint(&mut self, endpoint: EndpointId, dns: EndpointDns) {
        self.endpoints.insert(endpoint, dns);
    }
}
