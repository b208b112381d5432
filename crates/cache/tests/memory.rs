//! The cache's memory at issue 6's target scale, counted by the allocator rather than read
//! from the process's resident set: 100k names with 10 IPs each (1M pairs, every IP distinct,
//! so the reverse map holds 1M addresses) must take at most 200 MB.
//!
//! The count is the bytes the cache asked for, plus 16 bytes per live allocation for the
//! allocator's own header (glibc's chunk overhead on 64-bit), so it is deterministic and close
//! to what `examples/memory.rs` measures as resident. This file is its own test binary with a
//! single test, so that nothing else allocates while it counts.

use std::alloc::System;
use std::net::{IpAddr, Ipv4Addr};

use fqdnpath_cache::{DnsCache, Fqdn, Timestamp};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, Stats, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const NAMES: u32 = 100_000;
const IPS_PER_NAME: u32 = 10;
/// 200 MB (of 10^6 bytes).
const BUDGET: u64 = 200_000_000;
/// What the system allocator adds to each allocation.
const HEADER: u64 = 16;

/// Bytes held (with headers) and allocations alive since the region began.
fn held(stats: Stats) -> (u64, u64) {
    let live = |plus: usize, minus: usize| u64::try_from(plus.saturating_sub(minus)).unwrap_or(0);
    let bytes = live(stats.bytes_allocated, stats.bytes_deallocated);
    let allocations = live(stats.allocations, stats.deallocations);
    (bytes + HEADER * allocations, allocations)
}

fn fill(names: u32) -> DnsCache {
    let mut cache = DnsCache::default();
    let now = Timestamp::from_secs(1);
    for n in 0..names {
        let name = Fqdn::new(&format!("svc-{n}.example.com"));
        let ips: Vec<IpAddr> = (0..IPS_PER_NAME)
            .map(|k| IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + n * IPS_PER_NAME + k)))
            .collect();
        assert_eq!(cache.update(now, &name, &ips, 300).added.len(), ips.len());
    }
    cache
}

#[test]
fn a_million_pairs_of_100k_names_take_at_most_200_mb() {
    let region = Region::new(GLOBAL);
    let cache = fill(NAMES);
    let (bytes, allocations) = held(region.change());
    assert_eq!(cache.len(), (NAMES * IPS_PER_NAME) as usize);
    assert_eq!(cache.name_count(), NAMES as usize);
    let pairs = u64::from(NAMES * IPS_PER_NAME);
    eprintln!(
        "DnsCache, {NAMES} names x {IPS_PER_NAME} IPs: {}.{} MB in {allocations} allocations ({} bytes per pair)",
        bytes / 1_000_000,
        bytes % 1_000_000 / 100_000,
        bytes / pairs
    );
    // Everything the count saw was the cache's: dropping it gives it all back.
    drop(cache);
    let (after_drop, _) = held(region.change());
    assert!(
        after_drop < 64 * 1024,
        "{after_drop} bytes left after the drop"
    );
    assert!(
        bytes <= BUDGET,
        "{bytes} bytes for 1M pairs, over the {BUDGET}-byte budget"
    );
}
