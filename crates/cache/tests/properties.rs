//! Property tests of the cache: (a) against a naive reference, (b) snapshot round trips,
//! (c) concurrent ingestion ends where sequential ingestion does.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use fqdnpath_cache::{
    CacheConfig, DnsCache, EndpointCaches, EndpointId, Entry, Fqdn, FqdnConfig, SharedDnsCache,
    Snapshot, Timestamp,
};
use proptest::prelude::*;

const NAMES: &[&str] = &["a.com.", "b.com.", "c.org.", "x.y.z."];

/// Eight addresses of both families: four IPv4, two IPv6, and the IPv4-mapped forms of the
/// first two IPv4 ones, which are other addresses (`IpAddr` keeps them apart, and so must the
/// cache's per-family reverse tables).
fn ip(i: u8) -> IpAddr {
    match i {
        0..4 => IpAddr::V4(Ipv4Addr::new(192, 0, 2, i)),
        4..6 => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(i))),
        _ => IpAddr::V6(Ipv4Addr::new(192, 0, 2, i - 6).to_ipv6_mapped()),
    }
}

#[derive(Clone, Debug)]
enum Op {
    Update { name: usize, ips: Vec<u8>, ttl: u32 },
    Advance(u64),
    Gc,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..NAMES.len(), prop::collection::vec(0u8..8, 1..4), prop_oneof![Just(0u32), 0u32..120])
            .prop_map(|(name, ips, ttl)| Op::Update { name, ips, ttl }),
        3 => (0u64..90_000).prop_map(Op::Advance),
        1 => Just(Op::Gc),
    ]
}

/// The naive reference: a flat list of (name, ip, entry), every rule applied by scanning.
#[derive(Default)]
struct Naive {
    min_ttl: u32,
    cap: usize,
    rows: Vec<(String, IpAddr, Entry)>,
}

impl Naive {
    fn update(&mut self, now: Timestamp, name: &str, ips: &[IpAddr], ttl: u32) {
        let expiry = now + Duration::from_secs(u64::from(ttl.max(self.min_ttl)));
        let new = Entry {
            lookup_time: now,
            expiry,
            ttl: ttl.max(self.min_ttl),
        };
        for &ip in ips {
            match self.rows.iter_mut().find(|(n, i, _)| n == name && *i == ip) {
                // Later expiry replaces; on a tie the earlier lookup stays.
                Some((_, _, old)) => {
                    if new.expiry > old.expiry
                        || (new.expiry == old.expiry && new.lookup_time < old.lookup_time)
                    {
                        *old = new;
                    }
                }
                None => self.rows.push((name.to_owned(), ip, new)),
            }
        }
    }

    fn gc(&mut self, now: Timestamp) {
        self.rows.retain(|(_, _, e)| now <= e.expiry);
        if self.cap == 0 {
            return;
        }
        for name in NAMES {
            let mut mine: Vec<(Timestamp, IpAddr)> = self
                .rows
                .iter()
                .filter(|(n, _, _)| n == name)
                .map(|(_, ip, e)| (e.expiry, *ip))
                .collect();
            if mine.len() > self.cap {
                mine.sort();
                for (_, ip) in &mine[..mine.len() - self.cap] {
                    self.rows.retain(|(n, i, _)| !(n == name && i == ip));
                }
            }
        }
    }

    fn records(&self) -> Vec<(String, IpAddr, Entry)> {
        let mut rows = self.rows.clone();
        rows.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        rows
    }

    fn lookup(&self, name: &str, now: Timestamp) -> Vec<IpAddr> {
        let mut ips: Vec<IpAddr> = self
            .rows
            .iter()
            .filter(|(n, _, e)| n == name && now <= e.expiry)
            .map(|(_, ip, _)| *ip)
            .collect();
        ips.sort();
        ips
    }

    fn lookup_ip(&self, ip: IpAddr, now: Timestamp) -> Vec<String> {
        let mut names: Vec<String> = self
            .rows
            .iter()
            .filter(|(_, i, e)| *i == ip && now <= e.expiry)
            .map(|(n, _, _)| n.clone())
            .collect();
        names.sort();
        names
    }
}

fn records(c: &DnsCache) -> Vec<(String, IpAddr, Entry)> {
    c.records()
        .into_iter()
        .map(|r| (r.name.as_str().to_owned(), r.ip, r.entry))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// (a) After every operation the cache equals the naive reference: contents, lookups by
    /// name and by IP at the current time.
    #[test]
    fn cache_equals_naive_reference(
        ops in prop::collection::vec(op(), 1..80),
        min_ttl in prop_oneof![Just(0u32), 0u32..60],
        cap in prop_oneof![Just(0usize), 1usize..4],
    ) {
        let mut cache = DnsCache::new(CacheConfig { min_ttl, max_ips_per_hostname: cap });
        let mut naive = Naive { min_ttl, cap, ..Naive::default() };
        let mut now = Timestamp::from_secs(1_000);
        for op in ops {
            match op {
                Op::Update { name, ips, ttl } => {
                    let ips: Vec<IpAddr> = ips.into_iter().map(ip).collect();
                    cache.update(now, &Fqdn::new(NAMES[name]), &ips, ttl);
                    naive.update(now, NAMES[name], &ips, ttl);
                }
                Op::Advance(ms) => now = now + Duration::from_millis(ms),
                Op::Gc => {
                    cache.gc(now);
                    naive.gc(now);
                }
            }
            prop_assert_eq!(records(&cache), naive.records());
            prop_assert_eq!(cache.len(), naive.rows.len());
            for name in NAMES {
                prop_assert_eq!(cache.lookup(name, now), naive.lookup(name, now));
            }
            for i in 0..8 {
                let names: Vec<String> = cache.lookup_ip(ip(i), now).iter().map(|n| n.as_str().to_owned()).collect();
                prop_assert_eq!(names, naive.lookup_ip(ip(i), now));
            }
        }
    }

    /// (b) A snapshot of any state restores to an equal state, byte-equal when saved again,
    /// and the two behave the same afterwards.
    #[test]
    fn snapshot_round_trips(
        ops in prop::collection::vec((0u16..3, op(), prop::collection::vec(0u8..8, 0..3)), 1..60),
    ) {
        let config = FqdnConfig::new(0, 2, 3, Duration::from_secs(30));
        let mut caches = EndpointCaches::new(config);
        let mut now = Timestamp::from_secs(1_000);
        for (endpoint, op, live) in &ops {
            let endpoint = EndpointId(*endpoint);
            match op {
                Op::Update { name, ips, ttl } => {
                    let ips: Vec<IpAddr> = ips.iter().map(|&i| ip(i)).collect();
                    caches.endpoint_mut(endpoint).update(now, &Fqdn::new(NAMES[*name]), &ips, *ttl);
                }
                Op::Advance(ms) => now = now + Duration::from_millis(*ms),
                Op::Gc => {
                    caches.gc(now);
                    caches.ct_gc(now, live.iter().map(|&i| (endpoint, ip(i))));
                }
            }
        }
        let json = Snapshot::of(&caches).to_json();
        let mut restored = Snapshot::from_json(&json).unwrap().restore(config).unwrap();
        prop_assert_eq!(&restored, &caches);
        prop_assert_eq!(Snapshot::of(&restored).to_json(), json);
        let later = now + Duration::from_secs(300);
        caches.ct_gc(later, []);
        restored.ct_gc(later, []);
        prop_assert_eq!(caches.gc(later), restored.gc(later));
        prop_assert_eq!(restored, caches);
    }

    /// (c) Four threads ingesting into the shared cache, each its own slice in its own order,
    /// end in the state one thread reaches applying everything in order.
    #[test]
    fn concurrent_ingestion_equals_sequential(
        updates in prop::collection::vec(
            (0..NAMES.len(), prop::collection::vec(0u8..8, 1..4), 0u32..120, 0u64..50_000),
            1..200,
        ),
        shards in 1usize..9,
    ) {
        let config = CacheConfig { min_ttl: 0, max_ips_per_hostname: 2 };
        let updates: Vec<(Fqdn, Vec<IpAddr>, u32, Timestamp)> = updates
            .into_iter()
            .map(|(n, ips, ttl, ms)| (
                Fqdn::new(NAMES[n]),
                ips.into_iter().map(ip).collect(),
                ttl,
                Timestamp::from_millis(ms),
            ))
            .collect();
        let mut sequential = DnsCache::new(config);
        let mut by_time = updates.clone();
        by_time.sort_by_key(|u| u.3);
        for (name, ips, ttl, at) in &by_time {
            sequential.update(*at, name, ips, *ttl);
        }
        let shared = Arc::new(SharedDnsCache::new(config, shards));
        let updates = Arc::new(updates);
        std::thread::scope(|scope| {
            for worker in 0..4 {
                let shared = Arc::clone(&shared);
                let updates = Arc::clone(&updates);
                scope.spawn(move || {
                    let mine: Vec<_> = updates.iter().skip(worker).step_by(4).collect();
                    // Odd workers go backwards: order must not matter.
                    let apply = |(name, ips, ttl, at): &(Fqdn, Vec<IpAddr>, u32, Timestamp)| {
                        shared.update(*at, name, ips, *ttl);
                    };
                    if worker % 2 == 1 {
                        mine.iter().rev().for_each(|u| apply(u));
                    } else {
                        for u in &mine {
                            apply(u);
                        }
                    }
                });
            }
        });
        prop_assert_eq!(shared.to_cache(), sequential.clone());
        let gc_at = Timestamp::from_secs(100);
        let seq_gc = sequential.gc(gc_at);
        prop_assert_eq!(shared.gc(gc_at), seq_gc);
        let mut per_name: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
        for name in NAMES {
            per_name.insert((*name).to_owned(), sequential.lookup(name, gc_at));
            prop_assert_eq!(shared.lookup(name, gc_at), sequential.lookup(name, gc_at));
        }
        prop_assert_eq!(shared.len(), sequential.len());
    }
}

/// Valid responses of several shapes, to mutate.
fn seed_responses() -> Vec<Vec<u8>> {
    use fqdnpath_cache::hickory_proto::rr::RecordType;
    use fqdnpath_cache::wire::ResponseBuilder;
    vec![
        ResponseBuilder::new(1, "www.github.com", RecordType::A)
            .cname("www.github.com", "github.com", 300)
            .address("github.com", ip(2), 60)
            .address("github.com", ip(3), 60)
            .edns(1232)
            .to_wire()
            .unwrap(),
        ResponseBuilder::new(2, "a.com", RecordType::AAAA)
            .address("a.com", "2001:db8::1".parse().unwrap(), 5)
            .to_wire()
            .unwrap(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Damaged wire data never panics, and whatever is accepted leaves the cache consistent:
    /// every learned pair can be looked up by name and by IP.
    #[test]
    fn damaged_wire_data_never_panics_nor_corrupts_the_cache(
        seed in 0usize..2,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
        tail in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let mut wire = seed_responses().swap_remove(seed);
        for (at, byte) in flips {
            let i = at.index(wire.len());
            wire[i] = byte;
        }
        wire.truncate(cut.index(wire.len() + 1));
        wire.extend(tail);
        let mut caches = EndpointCaches::new(FqdnConfig::default());
        let now = Timestamp::from_secs(1);
        if let Ok(observation) = fqdnpath_cache::observe(&wire) {
            caches.observe(EndpointId(1), now, &observation);
            if let Some(dns) = caches.endpoint(EndpointId(1)) {
                for record in dns.cache.records() {
                    prop_assert!(dns.cache.ips_of(record.name.as_str()).any(|i| i == record.ip));
                    prop_assert!(dns.cache.names_of(record.ip).contains(&record.name));
                }
                prop_assert_eq!(dns.cache.len(), observation.addresses.iter().collect::<std::collections::BTreeSet<_>>().len());
            }
        }
    }
}
