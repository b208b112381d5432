//! [`DnsCache`]: the names one endpoint resolved, the IPs they had, and until when.
//!
//! Cilium's `fqdn.DNSCache`. Per (name, IP) it keeps the entry that expires latest; an entry is
//! valid up to and including its expiry instant. Expired entries stay until [`DnsCache::gc`]
//! removes them (Cilium's DNS GC runs every 60 s), and so does the per-name IP cap
//! (`tofqdns-endpoint-max-ip-per-hostname`): it is enforced at GC, not on insert.
//!
//! The reverse map, IP to names, is in `cache/reverse.rs`.

use std::net::IpAddr;
use std::time::Duration;

use foldhash::fast::FixedState;
use fqdnpath_names::Fqdn;
use hashbrown::HashMap;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::observe::ObservationBuf;
use fqdnpath_names::Timestamp;

mod reverse;

use reverse::Reverse;

/// Cilium's default `tofqdns-endpoint-max-ip-per-hostname`.
pub const DEFAULT_MAX_IPS_PER_HOSTNAME: usize = 1000;

/// The cache's settings, named and defaulted as Cilium's agent flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CacheConfig {
    /// `tofqdns-min-ttl`: the least TTL, in seconds, an observation is kept for. Cilium's
    /// default 0 honours the TTLs of the answers.
    #[doc(alias = "tofqdns-min-ttl")]
    #[serde(rename = "tofqdns-min-ttl")]
    pub min_ttl: u32,
    /// `tofqdns-endpoint-max-ip-per-hostname`: how many IPs a name keeps at GC; 0 = no cap.
    #[doc(alias = "tofqdns-endpoint-max-ip-per-hostname")]
    #[serde(rename = "tofqdns-endpoint-max-ip-per-hostname")]
    pub max_ips_per_hostname: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            min_ttl: 0,
            max_ips_per_hostname: DEFAULT_MAX_IPS_PER_HOSTNAME,
        }
    }
}

/// What the cache holds for one (name, IP) pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entry {
    /// When the response was observed.
    pub lookup_time: Timestamp,
    /// `lookup_time + max(ttl, tofqdns-min-ttl)`; the entry is valid up to this instant included.
    pub expiry: Timestamp,
    /// The TTL in seconds: the response's, raised to `tofqdns-min-ttl` (Cilium stores the
    /// raised value).
    pub ttl: u32,
}

impl Entry {
    /// The entry of an observation at `lookup_time` with `ttl`, under `min_ttl`.
    pub fn new(lookup_time: Timestamp, ttl: u32, min_ttl: u32) -> Self {
        let ttl = ttl.max(min_ttl);
        Self {
            lookup_time,
            expiry: lookup_time + Duration::from_secs(u64::from(ttl)),
            ttl,
        }
    }

    /// Whether the entry is still valid at `now` (valid at exactly its expiry).
    pub fn is_valid_at(&self, now: Timestamp) -> bool {
        now <= self.expiry
    }

    /// Whether `self` should replace `old` for the same (name, IP).
    ///
    /// The later expiry wins, as in Cilium. Cilium keeps the old entry on equal expiry; when
    /// updates arrive in time order that is the one with the earlier lookup, which is the rule
    /// here too, so the outcome does not depend on the order updates are applied in (which the
    /// concurrent cache needs). Equal expiry and equal lookup means equal TTL.
    fn supersedes(&self, old: &Self) -> bool {
        (self.expiry, std::cmp::Reverse(self.lookup_time), self.ttl)
            > (old.expiry, std::cmp::Reverse(old.lookup_time), old.ttl)
    }
}

/// One (name, IP) pair and its entry, as listed by the cache.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CacheRecord {
    /// The name.
    pub name: Fqdn,
    /// The IP.
    pub ip: IpAddr,
    /// The entry.
    #[serde(flatten)]
    pub entry: Entry,
}

/// What [`DnsCache::update`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpdateOutcome {
    /// IPs that were not held for the name before: new (name, IP) pairs, for the datapath.
    pub added: Vec<IpAddr>,
    /// IPs whose entry was replaced by one that expires later.
    pub extended: Vec<IpAddr>,
}

impl UpdateOutcome {
    /// Whether anything changed.
    pub fn changed(&self) -> bool {
        !self.added.is_empty() || !self.extended.is_empty()
    }

    /// Empties both lists, keeping their capacity.
    pub fn clear(&mut self) {
        self.added.clear();
        self.extended.clear();
    }

    fn record(&mut self, done: Upsert, ip: IpAddr) {
        match done {
            Upsert::Added => self.added.push(ip),
            Upsert::Replaced => self.extended.push(ip),
            Upsert::Kept => {}
        }
    }
}

/// Why a pair left the cache at GC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Removal {
    /// Its entry had expired.
    Expired,
    /// Its name held more IPs than the per-name cap, and it expired earliest.
    OverLimit,
}

/// One pair [`DnsCache::gc`] removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removed {
    /// The name.
    pub name: Fqdn,
    /// The IP.
    pub ip: IpAddr,
    /// The entry it had.
    pub entry: Entry,
    /// Why it left.
    pub why: Removal,
}

/// The pairs [`DnsCache::gc`] removed, in (name, IP) order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcOutcome {
    /// Each removed pair.
    pub removed: Vec<Removed>,
}

/// A pair leaving one name at GC.
type Gone = (IpAddr, Entry, Removal);

#[derive(Clone, Copy)]
enum Upsert {
    Added,
    Replaced,
    Kept,
}

/// The IPs of one name, sorted by IP (small and ordered; a name rarely has many).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct NameEntries {
    ips: Vec<(IpAddr, Entry)>,
}

impl NameEntries {
    /// Where `ip` is (`Ok`), or where it would go (`Err`), as a binary search says. A name
    /// usually holds a few IPs: then a scan for an equal address is cheaper than ordering
    /// comparisons, and the search runs only when the IP is new.
    fn find(&self, ip: IpAddr) -> Result<usize, usize> {
        if self.ips.len() <= 16
            && let Some(at) = self.ips.iter().position(|(x, _)| *x == ip)
        {
            return Ok(at);
        }
        self.ips.binary_search_by(|(x, _)| x.cmp(&ip))
    }
}

/// Puts one pair of `name` (whose IPs are `entries`), keeping the superseding entry; a new
/// pair also goes into the reverse map and the pair count.
fn upsert_pair(
    name: &Fqdn,
    entries: &mut NameEntries,
    reverse: &mut Reverse,
    pairs: &mut usize,
    ip: IpAddr,
    entry: Entry,
) -> Upsert {
    match entries.find(ip) {
        Ok(at) => {
            let held = &mut entries.ips[at].1;
            if entry.supersedes(held) {
                *held = entry;
                Upsert::Replaced
            } else {
                Upsert::Kept
            }
        }
        Err(at) => {
            entries.ips.insert(at, (ip, entry));
            let names = reverse.names_mut(ip);
            if let Err(at) = names.binary_search(name) {
                names.insert(at, name.clone());
            }
            *pairs += 1;
            Upsert::Added
        }
    }
}

/// The FQDN cache of one endpoint (Cilium's `DNSCache`).
#[derive(Clone, Debug)]
pub struct DnsCache {
    config: CacheConfig,
    forward: HashMap<Fqdn, NameEntries, FixedState>,
    /// IP -> the names holding it, sorted.
    reverse: Reverse,
    pairs: usize,
}

impl Default for DnsCache {
    fn default() -> Self {
        Self::new(CacheConfig::default())
    }
}

impl PartialEq for DnsCache {
    /// Equal settings and equal (name, IP, entry) contents.
    fn eq(&self, other: &Self) -> bool {
        self.config == other.config && self.pairs == other.pairs && self.forward == other.forward
    }
}

impl Eq for DnsCache {}

impl DnsCache {
    /// An empty cache with these settings.
    pub fn new(config: CacheConfig) -> Self {
        Self {
            config,
            forward: HashMap::with_hasher(FixedState::default()),
            reverse: Reverse::default(),
            pairs: 0,
        }
    }

    /// The settings.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// How many (name, IP) pairs the cache holds, expired ones included until GC.
    pub fn len(&self) -> usize {
        self.pairs
    }

    /// Whether the cache holds no pair.
    pub fn is_empty(&self) -> bool {
        self.pairs == 0
    }

    /// How many names the cache holds.
    pub fn name_count(&self) -> usize {
        self.forward.len()
    }

    /// Records that `name` resolved to `ips` with `ttl` at `lookup_time` (Cilium's `Update`).
    ///
    /// For each IP, the entry that expires latest is kept: an update that would expire earlier
    /// than (or at the same time as) the held entry changes nothing.
    pub fn update(
        &mut self,
        lookup_time: Timestamp,
        name: &Fqdn,
        ips: &[IpAddr],
        ttl: u32,
    ) -> UpdateOutcome {
        let mut outcome = UpdateOutcome::default();
        self.update_keyed(
            lookup_time,
            name.as_str(),
            || name.clone(),
            ips,
            ttl,
            &mut outcome,
        );
        outcome
    }

    /// [`Self::update`] with the name as text (normalised here, see [`fqdnpath_names::normalize`])
    /// and the outcome written into `outcome` (cleared first): for ingest loops that reuse
    /// their buffers. Refreshing a name the cache holds allocates nothing once `outcome` is
    /// warm; only a new name or a new (name, IP) pair does.
    pub fn update_into(
        &mut self,
        lookup_time: Timestamp,
        name: &str,
        ips: &[IpAddr],
        ttl: u32,
        outcome: &mut UpdateOutcome,
    ) {
        let name = fqdnpath_names::normalize(name);
        self.update_keyed(lookup_time, &name, || Fqdn::new(&name), ips, ttl, outcome);
    }

    /// Learns from an observed response (see [`crate::observe`](mod@crate::observe)): only NOERROR with at least
    /// one address changes anything, as [`crate::EndpointDns::observe`]. The outcome is written
    /// into `outcome` (cleared first). With the buffers of [`crate::observe::observe_into`],
    /// this is the ingest path from wire bytes to the cache with no allocation in the steady
    /// state (the observation's name is already normal, so it is not normalised again).
    pub fn observe_into(
        &mut self,
        lookup_time: Timestamp,
        observation: &ObservationBuf,
        outcome: &mut UpdateOutcome,
    ) {
        if !observation.is_learnable() {
            outcome.clear();
            return;
        }
        let name = observation.qname();
        debug_assert_eq!(fqdnpath_names::normalize(name), name);
        self.update_keyed(
            lookup_time,
            name,
            || Fqdn::new(name),
            observation.addresses(),
            observation.ttl(),
            outcome,
        );
    }

    /// The one update: `name` is normal, `key` makes its [`Fqdn`] if the name is new.
    fn update_keyed(
        &mut self,
        lookup_time: Timestamp,
        name: &str,
        key: impl FnOnce() -> Fqdn,
        ips: &[IpAddr],
        ttl: u32,
        outcome: &mut UpdateOutcome,
    ) {
        outcome.clear();
        if ips.is_empty() {
            return;
        }
        let entry = Entry::new(lookup_time, ttl, self.config.min_ttl);
        if let Some((key, entries)) = self.forward.get_key_value_mut(name) {
            for &ip in ips {
                let done = upsert_pair(key, entries, &mut self.reverse, &mut self.pairs, ip, entry);
                outcome.record(done, ip);
            }
            return;
        }
        let key = key();
        // A new name: room for the whole answer at once, not the 4, 8, 16 of pushing one by one.
        let entries = self
            .forward
            .entry(key.clone())
            .or_insert_with(|| NameEntries {
                ips: Vec::with_capacity(ips.len()),
            });
        for &ip in ips {
            let done = upsert_pair(&key, entries, &mut self.reverse, &mut self.pairs, ip, entry);
            outcome.record(done, ip);
        }
    }

    /// Puts one pair, keeping the superseding entry.
    fn upsert(&mut self, name: &Fqdn, ip: IpAddr, entry: Entry) -> Upsert {
        let entries = match self.forward.get_mut(name.as_str()) {
            Some(entries) => entries,
            None => self.forward.entry(name.clone()).or_default(),
        };
        upsert_pair(name, entries, &mut self.reverse, &mut self.pairs, ip, entry)
    }

    /// Inserts a record as it is (used by restore and by merging shards).
    pub(crate) fn insert_record(&mut self, record: &CacheRecord) {
        let _ = self.upsert(&record.name, record.ip, record.entry);
    }

    /// The entry held for (name, IP), valid or not.
    pub fn get(&self, name: &Fqdn, ip: IpAddr) -> Option<Entry> {
        let entries = self.forward.get(name.as_str())?;
        entries.find(ip).ok().map(|at| entries.ips[at].1)
    }

    /// Calls `f` with every IP of `name` that is valid at `now`, in IP order.
    pub fn lookup_with(&self, name: &str, now: Timestamp, mut f: impl FnMut(IpAddr, &Entry)) {
        if let Some(entries) = self.forward.get(name) {
            for (ip, entry) in &entries.ips {
                if entry.is_valid_at(now) {
                    f(*ip, entry);
                }
            }
        }
    }

    /// Every IP held for `name`, valid or expired (until GC), in IP order.
    pub fn ips_of(&self, name: &str) -> impl Iterator<Item = IpAddr> + '_ {
        self.forward
            .get(name)
            .into_iter()
            .flat_map(|e| e.ips.iter().map(|(ip, _)| *ip))
    }

    /// Every name holding `ip`, valid or expired (until GC), in name order.
    pub fn names_of(&self, ip: IpAddr) -> &[Fqdn] {
        self.reverse.get(ip).map_or(&[], SmallVec::as_slice)
    }

    /// The IPs of `name` (normalised: lower-case, trailing dot) valid at `now`, in IP order.
    pub fn lookup(&self, name: &str, now: Timestamp) -> Vec<IpAddr> {
        let mut out = Vec::new();
        self.lookup_with(name, now, |ip, _| out.push(ip));
        out
    }

    /// The names that hold `ip` with an entry valid at `now`, in name order.
    pub fn lookup_ip(&self, ip: IpAddr, now: Timestamp) -> Vec<Fqdn> {
        let Some(names) = self.reverse.get(ip) else {
            return Vec::new();
        };
        names
            .iter()
            .filter(|name| self.get(name, ip).is_some_and(|e| e.is_valid_at(now)))
            .cloned()
            .collect()
    }

    /// Every name the cache holds (valid or not), sorted.
    pub fn names(&self) -> Vec<Fqdn> {
        let mut names: Vec<Fqdn> = self.forward.keys().cloned().collect();
        names.sort_unstable();
        names
    }

    /// Every pair with its entry, sorted by (name, IP).
    pub fn records(&self) -> Vec<CacheRecord> {
        let mut out = Vec::with_capacity(self.pairs);
        for (name, entries) in &self.forward {
            for (ip, entry) in &entries.ips {
                out.push(CacheRecord {
                    name: name.clone(),
                    ip: *ip,
                    entry: *entry,
                });
            }
        }
        out.sort_unstable_by(|a, b| (&a.name, a.ip).cmp(&(&b.name, b.ip)));
        out
    }

    /// Removes one pair; returns its entry.
    fn remove(&mut self, name: &Fqdn, ip: IpAddr) -> Option<Entry> {
        let entries = self.forward.get_mut(name.as_str())?;
        let at = entries.find(ip).ok()?;
        let (_, entry) = entries.ips.remove(at);
        if entries.ips.is_empty() {
            self.forward.remove(name.as_str());
        }
        self.reverse.remove_name(ip, name);
        self.pairs -= 1;
        Some(entry)
    }

    /// The DNS GC at `now`: removes the pairs expired at `now`, then enforces the per-name cap,
    /// removing the earliest-expiring IPs of each name over it (ties: the lower IP first).
    /// Returns the removed pairs; the caller turns them into zombies.
    pub fn gc(&mut self, now: Timestamp) -> GcOutcome {
        let limit = self.config.max_ips_per_hostname;
        // One pass over the names, removing in place; each name's removals stay in IP order,
        // and only the names that lost something are sorted afterwards.
        let mut groups: Vec<(Fqdn, Vec<Gone>)> = Vec::new();
        self.forward.retain(|name, entries| {
            let mut gone = Vec::new();
            entries.ips.retain(|&(ip, entry)| {
                let valid = entry.is_valid_at(now);
                if !valid {
                    gone.push((ip, entry, Removal::Expired));
                }
                valid
            });
            if limit > 0 && entries.ips.len() > limit {
                let mut order: Vec<(Timestamp, IpAddr)> =
                    entries.ips.iter().map(|(ip, e)| (e.expiry, *ip)).collect();
                order.sort_unstable();
                let mut evict: Vec<IpAddr> = order[..entries.ips.len() - limit]
                    .iter()
                    .map(|&(_, ip)| ip)
                    .collect();
                evict.sort_unstable();
                entries.ips.retain(|&(ip, entry)| {
                    let keep = evict.binary_search(&ip).is_err();
                    if !keep {
                        gone.push((ip, entry, Removal::OverLimit));
                    }
                    keep
                });
                gone.sort_unstable_by_key(|&(ip, _, _)| ip);
            }
            if !gone.is_empty() {
                groups.push((name.clone(), gone));
            }
            !entries.ips.is_empty()
        });
        groups.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut removed = Vec::with_capacity(groups.iter().map(|g| g.1.len()).sum());
        for (name, gone) in groups {
            for (ip, entry, why) in gone {
                self.reverse.remove_name(ip, &name);
                self.pairs -= 1;
                removed.push(Removed {
                    name: name.clone(),
                    ip,
                    entry,
                    why,
                });
            }
        }
        GcOutcome { removed }
    }

    /// Removes every pair of `name`; returns the removed IPs (Cilium's `ForceExpire` of a name).
    pub fn forget_name(&mut self, name: &Fqdn) -> Vec<IpAddr> {
        let ips: Vec<IpAddr> = self
            .forward
            .get(name.as_str())
            .map(|e| e.ips.iter().map(|(ip, _)| *ip).collect())
            .unwrap_or_default();
        for &ip in &ips {
            self.remove(name, ip);
        }
        ips
    }
}
