//! [`DnsZombieMappings`]: IPs whose DNS entries left the cache but that may still carry a
//! connection (Cilium's `DNSZombieMappings`).
//!
//! When the DNS GC removes a (name, IP) pair, the IP becomes a zombie, pending deletion. It keeps
//! its FQDN identity, so connections to it (old and new) are still allowed, until it is dead:
//!
//! - the last connection-tracking GC started strictly after its pending time plus the idle
//!   connection grace period, **and**
//! - strictly after it was last marked alive (the CT GC marks the destinations of live egress
//!   connections alive at its start time plus the grace period), **and**
//! - at least two CT GC runs have completed since it became a zombie (Cilium's revision check,
//!   which covers a CT GC pass that started before the zombie existed);
//! - and no sibling keeps it: a zombie stays while any other zombie sharing one of its names is
//!   alive by the rules above.
//!
//! Caps, applied at [`DnsZombieMappings::gc`]: per name, at most
//! `tofqdns-endpoint-max-ip-per-hostname` alive zombies; overall, at most
//! `tofqdns-max-deferred-connection-deletes`. Over a cap the least important go first: the
//! earliest last-alive time (a zombie never marked alive still carries the CT GC time it was
//! created under, which sorts it before any zombie marked since), then the earliest pending
//! time, then the fewest names; the IP breaks remaining ties so the outcome is deterministic
//! (Cilium's sort is unstable there).
//!
//! A fresh lookup of (name, IP) whose pair was new to the cache takes the name off the zombie
//! ([`DnsZombieMappings::forget_names`]); a zombie without names is gone.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use fqdnpath_names::Fqdn;
use serde::{Deserialize, Serialize};

use fqdnpath_names::Timestamp;

/// Cilium's default `tofqdns-max-deferred-connection-deletes`.
pub const DEFAULT_MAX_DEFERRED_CONNECTION_DELETES: usize = 10_000;

/// The zombies' settings, named and defaulted as Cilium's agent flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZombieConfig {
    /// `tofqdns-max-deferred-connection-deletes`: how many zombies an endpoint keeps at most.
    #[doc(alias = "tofqdns-max-deferred-connection-deletes")]
    pub max_deferred_connection_deletes: usize,
    /// `tofqdns-idle-connection-grace-period`: how much longer an idle connection counts alive.
    #[doc(alias = "tofqdns-idle-connection-grace-period")]
    pub idle_connection_grace_period: Duration,
    /// `tofqdns-endpoint-max-ip-per-hostname`: alive zombies per name at most; 0 = no cap.
    #[doc(alias = "tofqdns-endpoint-max-ip-per-hostname")]
    pub max_ips_per_hostname: usize,
}

impl Default for ZombieConfig {
    fn default() -> Self {
        Self {
            max_deferred_connection_deletes: DEFAULT_MAX_DEFERRED_CONNECTION_DELETES,
            idle_connection_grace_period: Duration::ZERO,
            max_ips_per_hostname: crate::cache::DEFAULT_MAX_IPS_PER_HOSTNAME,
        }
    }
}

/// One zombie IP and the names it had.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Zombie {
    /// The IP.
    pub ip: IpAddr,
    /// The names whose entries for this IP left the cache, sorted, never empty.
    pub names: Vec<Fqdn>,
    /// When a CT GC last saw a live connection to the IP (plus the grace period); created with
    /// the time of the last CT GC. `None`: no CT GC had run.
    pub alive_at: Option<Timestamp>,
    /// When the IP became a zombie (the GC time, or the entry's expiry if that was later).
    pub delete_pending_at: Timestamp,
    /// The CT GC revision when it became a zombie.
    pub revision_added_at: u64,
}

impl Zombie {
    /// The eviction order: least important first.
    fn eviction_key(&self) -> (Option<Timestamp>, Timestamp, usize, IpAddr) {
        (
            self.alive_at,
            self.delete_pending_at,
            self.names.len(),
            self.ip,
        )
    }
}

/// What [`DnsZombieMappings::gc`] decided, each list in IP order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZombieGc {
    /// Zombies that stay: their IPs keep their names' identities.
    pub alive: Vec<Zombie>,
    /// Zombies that died and left: their (name, IP) pairs leave the datapath.
    pub dead: Vec<Zombie>,
}

/// The zombies of one endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsZombieMappings {
    config: ZombieConfig,
    deletes: BTreeMap<IpAddr, Zombie>,
    last_ct_gc: Option<Timestamp>,
    ct_gc_revision: u64,
}

impl DnsZombieMappings {
    /// No zombies, and no CT GC run yet.
    pub fn new(config: ZombieConfig) -> Self {
        Self {
            config,
            deletes: BTreeMap::new(),
            last_ct_gc: None,
            ct_gc_revision: 0,
        }
    }

    /// The settings.
    pub fn config(&self) -> &ZombieConfig {
        &self.config
    }

    /// How many zombie IPs there are.
    pub fn len(&self) -> usize {
        self.deletes.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.deletes.is_empty()
    }

    /// The zombie of `ip`, if any.
    pub fn get(&self, ip: IpAddr) -> Option<&Zombie> {
        self.deletes.get(&ip)
    }

    /// Every zombie, in IP order.
    pub fn iter(&self) -> impl Iterator<Item = &Zombie> {
        self.deletes.values()
    }

    /// The start time of the last completed CT GC, if any.
    pub fn last_ct_gc(&self) -> Option<Timestamp> {
        self.last_ct_gc
    }

    /// How many CT GC runs have completed.
    pub fn ct_gc_revision(&self) -> u64 {
        self.ct_gc_revision
    }

    /// Makes `ip` a zombie pending since `pending_at` for `names`, or adds the names to it
    /// (Cilium's `Upsert`). The later pending time wins.
    pub fn upsert(&mut self, pending_at: Timestamp, ip: IpAddr, names: &[Fqdn]) {
        let last = self.last_ct_gc;
        let revision = self.ct_gc_revision;
        let zombie = self.deletes.entry(ip).or_insert_with(|| Zombie {
            ip,
            names: Vec::new(),
            alive_at: last,
            delete_pending_at: pending_at,
            revision_added_at: revision,
        });
        for name in names {
            if let Err(at) = zombie.names.binary_search(name) {
                zombie.names.insert(at, name.clone());
            }
        }
        zombie.delete_pending_at = zombie.delete_pending_at.max(pending_at);
        zombie.alive_at = zombie.alive_at.max(last);
    }

    /// Marks the zombie of `ip`, if any, alive at `at` (Cilium's `MarkAlive`, called by the CT
    /// GC with its start time plus the grace period).
    pub fn mark_alive(&mut self, at: Timestamp, ip: IpAddr) {
        if let Some(zombie) = self.deletes.get_mut(&ip) {
            zombie.alive_at = Some(at);
        }
    }

    /// Records that a CT GC pass that started at `start` completed (Cilium's `SetCTGCTime`).
    pub fn set_ct_gc_time(&mut self, start: Timestamp) {
        self.last_ct_gc = Some(start);
        self.ct_gc_revision += 1;
    }

    /// Takes `name` off the zombies of `ips` that were pending at or before `lookup_time`; a
    /// zombie left without names is gone (Cilium's `ForceExpireByNameIP`, run when a fresh
    /// lookup brings the pair back into the cache).
    pub fn forget_names(&mut self, lookup_time: Timestamp, name: &Fqdn, ips: &[IpAddr]) {
        for ip in ips {
            let Some(zombie) = self.deletes.get_mut(ip) else {
                continue;
            };
            if zombie.delete_pending_at > lookup_time {
                continue;
            }
            zombie.names.retain(|n| n != name);
            if zombie.names.is_empty() {
                self.deletes.remove(ip);
            }
        }
    }

    /// Whether a live connection may still use the zombie (Cilium's `isConnectionAlive`).
    pub fn is_connection_alive(&self, zombie: &Zombie) -> bool {
        let Some(last) = self.last_ct_gc else {
            return true;
        };
        last <= zombie.delete_pending_at + self.config.idle_connection_grace_period
            || Some(last) <= zombie.alive_at
            || self.ct_gc_revision < zombie.revision_added_at.saturating_add(2)
    }

    /// Decides which zombies stay and which die, applies the caps, and removes the dead
    /// (Cilium's `GC`, run by the DNS GC after the cache's own GC).
    pub fn gc(&mut self) -> ZombieGc {
        let limit = self.config.max_ips_per_hostname;
        // name -> the zombies (by IP) that carry it: the connection-alive ones, then the others
        // for names that some connection-alive zombie has.
        let mut alive_names: BTreeMap<&Fqdn, Vec<IpAddr>> = BTreeMap::new();
        let connection_alive: BTreeSet<IpAddr> = self
            .deletes
            .values()
            .filter(|z| self.is_connection_alive(z))
            .map(|z| z.ip)
            .collect();
        for zombie in self.deletes.values() {
            if connection_alive.contains(&zombie.ip) {
                for name in &zombie.names {
                    alive_names.entry(name).or_default().push(zombie.ip);
                }
            }
        }
        for zombie in self.deletes.values() {
            if !connection_alive.contains(&zombie.ip) {
                for name in &zombie.names {
                    if let Some(ips) = alive_names.get_mut(name) {
                        ips.push(zombie.ip);
                    }
                }
            }
        }

        let mut alive: BTreeSet<IpAddr> = BTreeSet::new();
        let mut dead: BTreeSet<IpAddr> = BTreeSet::new();
        for zombie in self.deletes.values() {
            let mut is_alive = connection_alive.contains(&zombie.ip);
            let mut over_limit = false;
            if limit > 0 || !is_alive {
                for name in &zombie.names {
                    if let Some(ips) = alive_names.get(name) {
                        is_alive = true;
                        if limit > 0 && ips.len() > limit {
                            over_limit = true;
                            break;
                        }
                    }
                }
            }
            if over_limit {
                // Decided per name below.
            } else if is_alive {
                alive.insert(zombie.ip);
            } else {
                dead.insert(zombie.ip);
            }
        }

        if limit > 0 {
            let mut evicted = BTreeSet::new();
            let mut possibly_alive = BTreeSet::new();
            for ips in alive_names.values() {
                if ips.len() <= limit {
                    continue;
                }
                let mut sorted: Vec<&Zombie> = ips.iter().map(|ip| &self.deletes[ip]).collect();
                sorted.sort_by_key(|z| z.eviction_key());
                let over = sorted.len() - limit;
                evicted.extend(sorted[..over].iter().map(|z| z.ip));
                possibly_alive.extend(sorted[over..].iter().map(|z| z.ip));
            }
            for ip in &evicted {
                possibly_alive.remove(ip);
                alive.remove(ip);
            }
            alive.extend(possibly_alive);
            dead.extend(evicted);
        }

        let cap = self.config.max_deferred_connection_deletes;
        if alive.len() > cap {
            let mut sorted: Vec<&Zombie> = alive.iter().map(|ip| &self.deletes[ip]).collect();
            sorted.sort_by_key(|z| z.eviction_key());
            let over: Vec<IpAddr> = sorted[..alive.len() - cap].iter().map(|z| z.ip).collect();
            for ip in over {
                alive.remove(&ip);
                dead.insert(ip);
            }
        }

        let alive = alive.iter().map(|ip| self.deletes[ip].clone()).collect();
        let dead = dead
            .iter()
            .filter_map(|ip| self.deletes.remove(ip))
            .collect();
        ZombieGc { alive, dead }
    }

    /// Puts a zombie as it is (restore).
    pub(crate) fn insert_raw(&mut self, zombie: Zombie) {
        self.deletes.insert(zombie.ip, zombie);
    }

    /// Sets the CT GC bookkeeping as it was (restore).
    pub(crate) fn set_ct_gc_state(&mut self, last: Option<Timestamp>, revision: u64) {
        self.last_ct_gc = last;
        self.ct_gc_revision = revision;
    }

    /// What an agent restart does to the CT GC bookkeeping in Cilium: the revision counter and
    /// the last CT GC time live only in memory, so after a restart no CT GC has run, and every
    /// zombie needs two more CT GC passes before it can die.
    pub fn restart(&mut self) {
        self.last_ct_gc = None;
        self.ct_gc_revision = 0;
        for zombie in self.deletes.values_mut() {
            zombie.revision_added_at = 0;
        }
    }
}
