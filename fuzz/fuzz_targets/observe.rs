//! DNS wire bytes through observation and the cache: never a panic, and whatever is learned
//! leaves the cache consistent (every pair found by name and by IP, GC and snapshot exact).
#![no_main]

use fqdnpath_cache::{EndpointCaches, EndpointId, FqdnConfig, Snapshot, Timestamp, observe};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(observation) = observe(data) else {
        return;
    };
    assert_eq!(
        observation.qname.as_str(),
        fqdnpath_names::normalize(observation.qname.as_str())
    );
    let mut caches = EndpointCaches::new(FqdnConfig::default());
    caches.observe(EndpointId(1), Timestamp::from_secs(1), &observation);
    let Some(dns) = caches.endpoint(EndpointId(1)) else {
        assert!(!observation.is_learnable());
        return;
    };
    for record in dns.cache.records() {
        assert!(
            dns.cache
                .ips_of(record.name.as_str())
                .any(|ip| ip == record.ip)
        );
        assert!(dns.cache.names_of(record.ip).contains(&record.name));
    }
    let restored = Snapshot::from_json(&Snapshot::of(&caches).to_json())
        .and_then(|s| s.restore(FqdnConfig::default()))
        .expect("a snapshot of any state restores");
    assert_eq!(restored, caches);
    caches
        .gc(Timestamp::from_secs(1)
            + std::time::Duration::from_secs(u64::from(observation.ttl) + 1));
});
