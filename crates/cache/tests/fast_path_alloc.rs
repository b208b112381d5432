//! Issue 6's zero-allocation ingest, counted by the allocator: once its buffers are warm, the
//! fast path (`observe_into`) and the cache refresh (`DnsCache::observe_into`) of names the cache
//! holds
//! allocate nothing. This file is its own test binary without libtest's harness (`harness =
//! false`): one thread, so that nothing else allocates while it counts.

use std::alloc::System;
use std::net::{IpAddr, Ipv4Addr};

use fqdnpath_cache::hickory_proto::rr::RecordType;
use fqdnpath_cache::wire::ResponseBuilder;
use fqdnpath_cache::{DnsCache, ObservationBuf, Timestamp, UpdateOutcome, observe_into};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// A response to `svc{i}.example.com` A: one CNAME and four A records, with EDNS.
fn response(i: u16) -> Vec<u8> {
    let qname = format!("svc{i}.example.com");
    let target = format!("lb{i}.edge.example.net");
    let mut builder = ResponseBuilder::new(i, &qname, RecordType::A)
        .cname(&qname, &target, 300)
        .edns(1232);
    for k in 0..4u32 {
        let ip = IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + u32::from(i) * 4 + k));
        builder = builder.address(&target, ip, 60);
    }
    builder.to_wire().unwrap()
}

fn main() {
    warm_ingest_of_known_names_allocates_nothing();
    println!("1 passed, 0 failed");
}

fn warm_ingest_of_known_names_allocates_nothing() {
    let wires: Vec<Vec<u8>> = (0..64).map(response).collect();
    let mut cache = DnsCache::default();
    let mut buf = ObservationBuf::new();
    let mut outcome = UpdateOutcome::default();
    let mut ingest = |cache: &mut DnsCache, t: u64| {
        for wire in &wires {
            observe_into(wire, &mut buf).unwrap();
            cache.observe_into(Timestamp::from_millis(t), &buf, &mut outcome);
        }
    };
    // Learn every name, and warm the buffers.
    ingest(&mut cache, 0);
    ingest(&mut cache, 1);
    let region = Region::new(GLOBAL);
    for t in 2..100 {
        ingest(&mut cache, t);
    }
    let stats = region.change();
    assert_eq!(outcome.extended.len(), 4, "each refresh extends the 4 IPs");
    assert_eq!(
        (stats.allocations, stats.reallocations),
        (0, 0),
        "{stats:?} over {} responses",
        98 * wires.len()
    );
    assert_eq!(cache.len(), 64 * 4);
}
