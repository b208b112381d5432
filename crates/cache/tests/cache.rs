//! SEMANTICS.md section 2: the cache, its GC, zombies, endpoints and restore.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use fqdnpath_cache::{
    CacheConfig, DnsCache, DnsZombieMappings, EndpointCaches, EndpointId, Entry, Fqdn, FqdnConfig,
    Removal, Snapshot, SnapshotError, Timestamp, UpdateOutcome, ZombieConfig,
};

use common::ip;

fn t(secs: u64) -> Timestamp {
    Timestamp::from_secs(secs)
}

fn name(n: &str) -> Fqdn {
    Fqdn::new(n)
}

fn ips(addrs: &[&str]) -> Vec<IpAddr> {
    addrs.iter().map(|a| ip(a)).collect()
}

const EP: EndpointId = EndpointId(1);

/// Learns that `n` resolved to `addrs` at `secs`, valid for `ttl` seconds.
fn learn(c: &mut DnsCache, secs: u64, n: &str, addrs: &[&str], ttl: u32) -> UpdateOutcome {
    c.update(t(secs), &name(n), &ips(addrs), ttl)
}

/// The same, in endpoint `ep`'s cache.
fn learn_by(
    caches: &mut EndpointCaches,
    ep: EndpointId,
    secs: u64,
    n: &str,
    addrs: &[&str],
    ttl: u32,
) {
    caches
        .endpoint_mut(ep)
        .update(t(secs), &name(n), &ips(addrs), ttl);
}

/// A default cache that learned `a.com` -> `192.0.2.1` at `secs`, valid for `ttl` seconds.
fn a_com_learned(secs: u64, ttl: u32) -> DnsCache {
    let mut c = DnsCache::default();
    learn(&mut c, secs, "a.com", &["192.0.2.1"], ttl);
    c
}

/// The entry of `a.com` -> `192.0.2.1`.
fn a_com(c: &DnsCache) -> Entry {
    c.get(&name("a.com"), ip("192.0.2.1")).unwrap()
}

/// Caches of the given configuration in which endpoint `EP` learned `a.com` -> `192.0.2.1`
/// at 0 for 30 s, and the GC at 60 s turned the pair into a zombie.
fn a_com_zombie(config: FqdnConfig) -> EndpointCaches {
    let mut caches = EndpointCaches::new(config);
    learn_by(&mut caches, EP, 0, "a.com", &["192.0.2.1"], 30);
    caches.gc(t(60));
    caches
}

#[test]
fn expiry_is_lookup_time_plus_ttl() {
    let e = a_com(&a_com_learned(100, 60));
    assert_eq!(e.expiry, t(160));
    assert_eq!(e.lookup_time, t(100));
}

#[test]
fn entry_is_valid_at_exactly_its_expiry_and_expired_strictly_after() {
    let mut c = a_com_learned(100, 60);
    assert_eq!(c.lookup("a.com.", t(160)), [ip("192.0.2.1")]);
    assert!(
        c.lookup("a.com.", t(160) + Duration::from_nanos(1))
            .is_empty()
    );
    // Until GC, the expired pair is still held (and stays in the datapath).
    assert_eq!(c.len(), 1);
    c.gc(t(160));
    assert_eq!(c.len(), 1);
    c.gc(t(161));
    assert!(c.is_empty());
}

#[test]
fn min_ttl_raises_short_ttls() {
    let mut c = DnsCache::new(CacheConfig {
        min_ttl: 3600,
        ..CacheConfig::default()
    });
    learn(&mut c, 0, "a.com", &["192.0.2.1"], 5);
    let e = a_com(&c);
    assert_eq!(e.expiry, t(3600));
    assert_eq!(e.ttl, 3600, "Cilium stores the raised TTL");
    learn(&mut c, 0, "b.com", &["192.0.2.2"], 7200);
    assert_eq!(
        c.get(&name("b.com"), ip("192.0.2.2")).unwrap().expiry,
        t(7200)
    );
}

#[test]
fn later_expiry_wins_for_the_same_name_and_ip() {
    let mut c = a_com_learned(100, 60);
    let out = learn(&mut c, 110, "a.com", &["192.0.2.1"], 60);
    assert!(out.added.is_empty());
    assert_eq!(out.extended, [ip("192.0.2.1")]);
    assert_eq!(a_com(&c).expiry, t(170));
}

#[test]
fn earlier_or_equal_expiry_changes_nothing() {
    let mut c = a_com_learned(100, 300);
    let before = c.clone();
    let out = learn(&mut c, 110, "a.com", &["192.0.2.1"], 60);
    assert!(!out.changed());
    assert_eq!(c, before);
    // Equal expiry, later lookup: Cilium keeps the old entry.
    let out = learn(&mut c, 200, "a.com", &["192.0.2.1"], 200);
    assert!(!out.changed());
    assert_eq!(a_com(&c).lookup_time, t(100));
}

#[test]
fn names_sharing_an_ip_keep_their_own_expiry() {
    let mut c = a_com_learned(0, 60);
    learn(&mut c, 0, "b.com", &["192.0.2.1"], 600);
    assert_eq!(
        c.lookup_ip(ip("192.0.2.1"), t(30)),
        [name("a.com"), name("b.com")]
    );
    assert_eq!(c.lookup_ip(ip("192.0.2.1"), t(61)), [name("b.com")]);
    let gc = c.gc(t(61));
    assert_eq!(gc.removed.len(), 1);
    assert_eq!(gc.removed[0].name, name("a.com"));
    assert_eq!(c.names_of(ip("192.0.2.1")), [name("b.com")]);
}

/// A cache that keeps at most two IPs per name, and no minimum TTL.
fn capped_at_two() -> DnsCache {
    DnsCache::new(CacheConfig {
        min_ttl: 0,
        max_ips_per_hostname: 2,
    })
}

#[test]
fn per_name_cap_is_enforced_at_gc_not_on_insert() {
    let mut c = capped_at_two();
    learn(&mut c, 0, "a.com", &["192.0.2.1"], 300);
    learn(&mut c, 1, "a.com", &["192.0.2.2"], 100);
    learn(&mut c, 2, "a.com", &["192.0.2.3"], 200);
    // Over the cap, but everything is still there until GC.
    assert_eq!(c.lookup("a.com.", t(3)).len(), 3);
    let gc = c.gc(t(3));
    // The earliest-expiring IP goes first (192.0.2.2 expires at 101).
    assert_eq!(gc.removed.len(), 1);
    assert_eq!(gc.removed[0].ip, ip("192.0.2.2"));
    assert_eq!(gc.removed[0].why, Removal::OverLimit);
    assert_eq!(c.lookup("a.com.", t(3)), [ip("192.0.2.1"), ip("192.0.2.3")]);
}

#[test]
fn expired_pairs_are_removed_before_the_cap_is_counted() {
    let mut c = capped_at_two();
    learn(&mut c, 0, "a.com", &["192.0.2.1"], 10);
    learn(&mut c, 0, "a.com", &["192.0.2.2", "192.0.2.3"], 100);
    let gc = c.gc(t(20));
    assert_eq!(gc.removed.len(), 1);
    assert_eq!(gc.removed[0].why, Removal::Expired);
    assert_eq!(c.len(), 2);
}

#[test]
fn gc_turns_removed_pairs_into_zombies_that_keep_their_identity() {
    let caches = a_com_zombie(FqdnConfig::default());
    let dns = caches.endpoint(EP).unwrap();
    assert!(dns.cache.is_empty());
    let zombie = dns.zombies.get(ip("192.0.2.1")).unwrap();
    assert_eq!(zombie.names, [name("a.com")]);
    assert_eq!(zombie.delete_pending_at, t(60));
    // Still in the global view: the datapath keeps the IP's identity.
    assert!(caches.global_ips("a.com.").contains(&ip("192.0.2.1")));
}

/// Runs a CT GC at `secs` that saw `live` connections from `EP`.
fn ct_gc(caches: &mut EndpointCaches, secs: u64, live: &[&str]) {
    caches.ct_gc(t(secs), live.iter().map(|s| (EP, ip(s))));
}

#[test]
fn zombie_dies_once_ct_gc_ran_after_it_was_pending_and_last_alive() {
    let mut caches = a_com_zombie(FqdnConfig::default());
    // First CT GC after it became pending: Cilium also wants two completed passes.
    ct_gc(&mut caches, 70, &[]);
    let gc = caches.gc(t(120));
    assert_eq!(gc[&EP].zombies.alive.len(), 1);
    ct_gc(&mut caches, 130, &[]);
    let gc = caches.gc(t(180));
    assert_eq!(gc[&EP].zombies.dead.len(), 1);
    assert!(caches.global_ips("a.com.").is_empty());
}

#[test]
fn zombie_with_a_live_connection_stays() {
    let mut caches = a_com_zombie(FqdnConfig::default());
    for secs in [70, 130, 190, 250] {
        ct_gc(&mut caches, secs, &["192.0.2.1"]);
        let gc = caches.gc(t(secs + 50));
        assert!(gc[&EP].zombies.dead.is_empty(), "at {secs}");
    }
    // The connection closes: the next CT GC no longer marks it, and it dies.
    ct_gc(&mut caches, 310, &[]);
    let gc = caches.gc(t(360));
    assert_eq!(gc[&EP].zombies.dead.len(), 1);
}

#[test]
fn sibling_ips_of_a_name_stay_while_one_is_alive() {
    let mut caches = EndpointCaches::new(FqdnConfig::default());
    learn_by(&mut caches, EP, 0, "a.com", &["192.0.2.1", "192.0.2.2"], 30);
    learn_by(&mut caches, EP, 0, "b.com", &["192.0.2.9"], 30);
    caches.gc(t(60));
    ct_gc(&mut caches, 70, &["192.0.2.1"]);
    ct_gc(&mut caches, 80, &["192.0.2.1"]);
    let gc = caches.gc(t(120));
    let alive: Vec<IpAddr> = gc[&EP].zombies.alive.iter().map(|z| z.ip).collect();
    let dead: Vec<IpAddr> = gc[&EP].zombies.dead.iter().map(|z| z.ip).collect();
    assert_eq!(alive, [ip("192.0.2.1"), ip("192.0.2.2")]);
    assert_eq!(dead, [ip("192.0.2.9")]);
}

#[test]
fn idle_grace_period_extends_how_long_a_connection_counts_alive() {
    let config = FqdnConfig::new(0, 1000, 10_000, Duration::from_secs(120));
    let mut caches = a_com_zombie(config);
    ct_gc(&mut caches, 70, &["192.0.2.1"]); // alive until 70 + 120
    ct_gc(&mut caches, 130, &[]);
    ct_gc(&mut caches, 190, &[]);
    assert_eq!(caches.gc(t(200))[&EP].zombies.alive.len(), 1);
    ct_gc(&mut caches, 250, &[]);
    assert_eq!(caches.gc(t(260))[&EP].zombies.dead.len(), 1);
}

#[test]
fn fresh_lookup_revives_a_zombie() {
    let mut caches = EndpointCaches::new(FqdnConfig::default());
    let dns = caches.endpoint_mut(EP);
    dns.update(t(0), &name("a.com"), &[ip("192.0.2.1")], 30);
    dns.gc(t(60));
    assert_eq!(dns.zombies.len(), 1);
    let out = dns.update(t(70), &name("a.com"), &[ip("192.0.2.1")], 30);
    assert_eq!(out.added, [ip("192.0.2.1")]);
    assert!(dns.zombies.is_empty());
}

/// Zombie mappings of `config` holding `pending`: each an address, its names, and when its
/// delete became pending.
fn zombies(config: ZombieConfig, pending: &[(u64, &str, &[&str])]) -> DnsZombieMappings {
    let mut z = DnsZombieMappings::new(config);
    for (secs, addr, names) in pending {
        let names: Vec<Fqdn> = names.iter().map(|n| name(n)).collect();
        z.upsert(t(*secs), ip(addr), &names);
    }
    z
}

/// A zombie configuration that keeps at most `max` zombies.
fn keeping(max: usize) -> ZombieConfig {
    ZombieConfig {
        max_deferred_connection_deletes: max,
        ..ZombieConfig::default()
    }
}

#[test]
fn deferred_delete_cap_evicts_the_least_recently_alive_first() {
    let mut z = zombies(
        keeping(2),
        &[
            (10, "192.0.2.1", &["a.com"]),
            (10, "192.0.2.2", &["b.com"]),
            (10, "192.0.2.3", &["c.com"]),
        ],
    );
    z.mark_alive(t(20), ip("192.0.2.1"));
    z.mark_alive(t(20), ip("192.0.2.3"));
    let gc = z.gc();
    assert_eq!(gc.dead.len(), 1);
    assert_eq!(
        gc.dead[0].ip,
        ip("192.0.2.2"),
        "never marked alive goes first"
    );
    assert_eq!(z.len(), 2);
}

#[test]
fn deferred_delete_cap_then_evicts_the_oldest_pending_then_fewer_names() {
    let older: &[(u64, &str, &[&str])] =
        &[(20, "192.0.2.1", &["a.com"]), (10, "192.0.2.2", &["b.com"])];
    let fewer_names: &[(u64, &str, &[&str])] = &[
        (10, "192.0.2.1", &["a.com", "x.com"]),
        (10, "192.0.2.2", &["b.com"]),
    ];
    for (pending, why) in [
        (older, "older pending goes first"),
        (fewer_names, "fewer names goes first"),
    ] {
        let gc = zombies(keeping(1), pending).gc();
        assert_eq!(gc.dead[0].ip, ip("192.0.2.2"), "{why}");
    }
}

#[test]
fn alive_zombies_of_one_name_are_capped_per_hostname() {
    let config = ZombieConfig {
        max_ips_per_hostname: 1,
        ..ZombieConfig::default()
    };
    let gc = zombies(
        config,
        &[(10, "192.0.2.1", &["a.com"]), (20, "192.0.2.2", &["a.com"])],
    )
    .gc();
    assert_eq!(
        gc.dead.iter().map(|z| z.ip).collect::<Vec<_>>(),
        [ip("192.0.2.1")]
    );
    assert_eq!(
        gc.alive.iter().map(|z| z.ip).collect::<Vec<_>>(),
        [ip("192.0.2.2")]
    );
}

#[test]
fn each_endpoint_learns_alone_but_the_global_view_is_the_union() {
    let mut caches = EndpointCaches::new(FqdnConfig::default());
    learn_by(&mut caches, EndpointId(1), 0, "a.com", &["192.0.2.1"], 60);
    learn_by(&mut caches, EndpointId(2), 0, "a.com", &["192.0.2.2"], 60);
    let one = &caches.endpoint(EndpointId(1)).unwrap().cache;
    assert_eq!(one.lookup("a.com.", t(1)), [ip("192.0.2.1")]);
    // Cilium's leak: what endpoint 2 learned serves every endpoint selecting a.com.
    assert_eq!(
        caches.global_ips("a.com.").into_iter().collect::<Vec<_>>(),
        [ip("192.0.2.1"), ip("192.0.2.2")]
    );
    assert_eq!(
        caches
            .global_names(ip("192.0.2.2"))
            .into_iter()
            .collect::<Vec<_>>(),
        [name("a.com")]
    );
}

fn busy_state() -> EndpointCaches {
    let mut caches = EndpointCaches::new(FqdnConfig::default());
    learn_by(
        &mut caches,
        EndpointId(1),
        0,
        "a.com",
        &["192.0.2.1", "2001:db8::1"],
        30,
    );
    learn_by(&mut caches, EndpointId(1), 50, "b.com", &["192.0.2.7"], 300);
    learn_by(&mut caches, EndpointId(7), 5, "c.com", &["192.0.2.1"], 600);
    caches.gc(t(60));
    caches.ct_gc(t(65), [(EndpointId(1), ip("192.0.2.1"))]);
    caches
}

#[test]
fn snapshot_restores_an_identical_state() {
    let caches = busy_state();
    let json = Snapshot::of(&caches).to_json();
    let restored = Snapshot::from_json(&json)
        .unwrap()
        .restore(*caches.config())
        .unwrap();
    assert_eq!(restored, caches);
    assert_eq!(Snapshot::of(&restored).to_json(), json);
    // And it behaves the same from there on.
    let (mut a, mut b) = (caches, restored);
    a.ct_gc(t(130), []);
    b.ct_gc(t(130), []);
    assert_eq!(a.gc(t(200)), b.gc(t(200)));
    assert_eq!(a, b);
}

#[test]
fn snapshot_errors_say_where_and_why() {
    let err = Snapshot::from_json("{\"version\": 2, \"endpoints\": []}").unwrap_err();
    assert!(matches!(
        err,
        SnapshotError::Version {
            found: 2,
            supported: 1
        }
    ));
    let err = Snapshot::from_json("{\"version\": 1, \"endpoints\": [], \"x\": 1}").unwrap_err();
    assert!(err.to_string().contains("unknown field `x`"), "{err}");
    let mut snap = Snapshot::of(&busy_state());
    snap.endpoints[0].cache[0].expiration_time = t(0);
    snap.endpoints[0].cache[0].lookup_time = t(5);
    let err = snap.restore(FqdnConfig::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "endpoints[0].cache[0] (b.com. 192.0.2.7): expiration-time is before lookup-time"
    );
    let mut snap = Snapshot::of(&busy_state());
    snap.endpoints[0].zombies.deletes[0].names.clear();
    assert!(matches!(
        snap.restore(FqdnConfig::default()),
        Err(SnapshotError::InvalidZombie {
            endpoint_index: 0,
            index: 0,
            ..
        })
    ));
}

#[test]
fn agent_restart_gives_every_zombie_two_more_ct_gc_passes() {
    let mut caches = busy_state();
    let restored = Snapshot::of(&caches).restore(*caches.config()).unwrap();
    let mut dns = restored.endpoint(EndpointId(1)).unwrap().clone();
    dns.zombies.restart();
    assert_eq!(dns.zombies.last_ct_gc(), None);
    dns.zombies.set_ct_gc_time(t(500));
    assert!(dns.zombies.gc().dead.is_empty());
    dns.zombies.set_ct_gc_time(t(560));
    assert!(!dns.zombies.gc().dead.is_empty());
    // Without the restart the same zombies would have died at the first pass.
    let dns = caches.endpoint_mut(EndpointId(1));
    dns.zombies.set_ct_gc_time(t(500));
    assert!(!dns.zombies.gc().dead.is_empty());
}
