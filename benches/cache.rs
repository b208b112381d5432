//! DNS observation and the FQDN cache: parse+reduce of one response (1 CNAME + 4 A, EDNS)
//! against plain hickory-proto parsing, ingest into a warm cache, lookups and GC at 100k names.
//!
//! Observation three ways, in the same run: hickory-proto's parse alone (the baseline), the
//! old path (hickory-proto's parse and the reduction), and the zero-allocation fast path
//! (`observe_into`, reused buffers); `parse_reduce` is the public `observe`, which now takes
//! the fast path and returns an owned observation. Ingest end to end (wire answer to cache
//! update) the old way and the zero-allocation way (`observe_into`, then
//! `DnsCache::observe_into`).

#![expect(clippy::cast_possible_truncation, reason = "bench inputs are small")]

mod common;

use std::hint::black_box;
use std::net::IpAddr;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use fqdnpath::agent::{Agent, AgentConfig};
use fqdnpath::cache::EndpointId;
use fqdnpath::cache::hickory_proto::op::Message;
use fqdnpath::cache::hickory_proto::rr::RecordType;
use fqdnpath::cache::wire::ResponseBuilder;
use fqdnpath::cache::{
    CacheConfig, DnsCache, Fqdn, Observation, ObservationBuf, ObserveError, Timestamp,
    UpdateOutcome, observe, observe_hickory, observe_into,
};
use fqdnpath::datapath::{Datapath, ReferenceDatapath};

const NAMES: usize = 100_000;

/// A response to `svc{i}.example.com` A: one CNAME and four A records, with EDNS.
fn response(i: usize) -> Vec<u8> {
    let qname = format!("svc{i}.example.com");
    let target = format!("lb{i}.edge.example.net");
    let mut builder = ResponseBuilder::new(i as u16, &qname, RecordType::A)
        .cname(&qname, &target, 300)
        .edns(1232);
    for k in 0..4 {
        builder = builder.address(&target, common::ip4((i * 4 + k) as u32), 60);
    }
    builder.to_wire().unwrap()
}

/// A cache holding 100k names with 4 IPs each, learned at t=0 with TTLs of 30 to 120 s.
/// An agent whose one endpoint may reach `*.example.com`, and its programmed datapath.
fn agent_and_datapath() -> (Agent, ReferenceDatapath) {
    let policies = common::client_policies(&[]);
    let agent = Agent::new(AgentConfig::default(), &policies, &[common::client()]).unwrap();
    let mut datapath = ReferenceDatapath::default();
    datapath.program(agent.compiler(), &|_| true).unwrap();
    (agent, datapath)
}

fn warm_cache() -> DnsCache {
    let mut cache = DnsCache::new(CacheConfig::default());
    for i in 0..NAMES {
        let ips: Vec<IpAddr> = (0..4).map(|k| common::ip4((i * 4 + k) as u32)).collect();
        let ttl = 30 + (i % 4) as u32 * 30;
        cache.update(
            Timestamp::ZERO,
            &Fqdn::new(&format!("svc{i}.example.com")),
            &ips,
            ttl,
        );
    }
    cache
}

fn bench_observe(c: &mut Criterion) {
    let wires: Vec<Vec<u8>> = (0..4096).map(response).collect();
    let mut group = c.benchmark_group("observe");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("hickory_parse", |b| {
        common::in_turn(b, &wires, |_, w| {
            Message::from_vec(w).unwrap().answers.len()
        });
    });
    // The old path: hickory-proto's parse, then the reduction.
    group.bench_function("hickory_parse_reduce", |b| {
        common::in_turn(b, &wires, |_, w| {
            observe_hickory(w).unwrap().addresses.len()
        });
    });
    // The public `observe`: the fast path, and an owned observation.
    group.bench_function("parse_reduce", |b| {
        common::in_turn(b, &wires, |_, w| observe(w).unwrap().addresses.len());
    });
    // The fast path into reused buffers: no allocation.
    group.bench_function("fast_into", |b| {
        let mut buf = ObservationBuf::new();
        common::in_turn(b, &wires, |_, w| {
            observe_into(w, &mut buf).unwrap();
            buf.addresses().len()
        });
    });
    group.finish();
}

/// A way to observe a response: `observe` or `observe_hickory`.
type Observe = fn(&[u8]) -> Result<Observation, ObserveError>;

fn bench_ingest(c: &mut Criterion) {
    let wires: Vec<Vec<u8>> = (0..NAMES).step_by(NAMES / 4096).map(response).collect();
    // The answers the benches below take in turn (the first 4096 of them).
    let turn = &wires[..4096];
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(3));
    // Observe a response and apply it to a cache of 100k names: the answer refreshes a name
    // the cache holds (the steady state of a busy endpoint). `observe`, then the old path end
    // to end: hickory-proto's parse and reduction, then the update.
    let observers: [(&str, Observe); 2] = [
        ("observe_update_warm_100k", observe),
        ("hickory_update_warm_100k", observe_hickory),
    ];
    for (name, observer) in observers {
        group.bench_function(name, |b| {
            let mut cache = warm_cache();
            common::in_turn(b, turn, |i, w| {
                let o = observer(w).unwrap();
                let now = Timestamp::from_millis(i);
                cache.update(now, &o.qname, &o.addresses, o.ttl).changed()
            });
        });
    }
    // Issue 6's end-to-end ingest: wire answer to cache update with reused buffers, no
    // allocation (the fast path, then `DnsCache::observe_into`).
    group.bench_function("fast_update_warm_100k", |b| {
        let mut cache = warm_cache();
        let mut buf = ObservationBuf::new();
        let mut outcome = UpdateOutcome::default();
        common::in_turn(b, turn, |i, w| {
            observe_into(w, &mut buf).unwrap();
            cache.observe_into(Timestamp::from_millis(i), &buf, &mut outcome);
            outcome.changed()
        });
    });
    // The whole agent path of issue 6: answer -> cache -> identities -> deltas applied to the
    // reference datapath, for answers that refresh what the agent holds (4096 names, learned
    // beforehand, outside the timing): the proxy's steady state.
    group.bench_function("agent_apply_warm_4096", |b| {
        let (mut agent, mut datapath) = agent_and_datapath();
        for (i, wire) in wires.iter().enumerate() {
            let learned = agent
                .on_response(EndpointId(1), wire, Timestamp::from_millis(i as u64))
                .unwrap();
            datapath.apply(&learned.deltas).unwrap();
        }
        // Iteration `i` comes 4096 ms after the warm-up's answers began.
        common::in_turn(b, turn, |i, w| {
            let now = Timestamp::from_millis(4096 + i);
            let learned = agent.on_response(EndpointId(1), w, now).unwrap();
            datapath.apply(&learned.deltas).unwrap();
            learned.deltas.len()
        });
    });
    // The same into an empty cache (every pair is new); the cache is made outside the timing.
    group.bench_function("observe_update_cold", |b| {
        let mut i = 0;
        b.iter_batched_ref(
            || DnsCache::new(CacheConfig::default()),
            |cache| {
                let o = observe(&wires[i & 4095]).unwrap();
                i += 1;
                black_box(
                    cache
                        .update(Timestamp::ZERO, &o.qname, &o.addresses, o.ttl)
                        .added
                        .len(),
                )
            },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("fast_update_cold", |b| {
        let mut buf = ObservationBuf::new();
        let mut outcome = UpdateOutcome::default();
        let mut i = 0;
        b.iter_batched_ref(
            || DnsCache::new(CacheConfig::default()),
            |cache| {
                observe_into(&wires[i & 4095], &mut buf).unwrap();
                i += 1;
                cache.observe_into(Timestamp::ZERO, &buf, &mut outcome);
                black_box(outcome.added.len())
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn bench_cache(c: &mut Criterion) {
    let cache = warm_cache();
    let names: Vec<String> = (0..4096)
        .map(|k| format!("svc{}.example.com.", (k * 7919) % NAMES))
        .collect();
    let ips: Vec<IpAddr> = (0..4096)
        .map(|k| common::ip4(((k * 7919) % (NAMES * 4)) as u32))
        .collect();
    let mut group = c.benchmark_group("cache");
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(1));
    group.bench_function("lookup_100k", |b| {
        common::in_turn(b, &names, |_, name| {
            let mut n = 0;
            cache.lookup_with(name, Timestamp::from_secs(10), |_, _| n += 1);
            n
        });
    });
    group.bench_function("lookup_ip_100k", |b| {
        common::in_turn(b, &ips, |_, ip| {
            cache.lookup_ip(*ip, Timestamp::from_secs(10)).len()
        });
    });
    group.throughput(Throughput::Elements(cache.len() as u64));
    group.sample_size(20);
    // A quarter of the names (TTL 30 s) have expired at t=45 s.
    group.bench_function("gc_100k_quarter_expired", |b| {
        b.iter_batched_ref(
            || cache.clone(),
            |c| black_box(c.gc(Timestamp::from_secs(45)).removed.len()),
            BatchSize::LargeInput,
        );
    });
    group.bench_function("gc_100k_none_expired", |b| {
        b.iter_batched_ref(
            || cache.clone(),
            |c| black_box(c.gc(Timestamp::from_secs(10)).removed.len()),
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, bench_observe, bench_ingest, bench_cache);
criterion_main!(benches);
