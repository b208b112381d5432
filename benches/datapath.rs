//! Policy compilation and the reference datapath: a verdict at 1k and 100k prefixes (IPv4 and
//! IPv6), the LPM table against the `prefix-trie` crate, a full compile of 1000 policies for
//! 100 endpoints, and the map changes of one DNS response.
#![expect(clippy::cast_possible_truncation, reason = "bench inputs are small")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fqdnpath::cache::{Fqdn, Timestamp};
use fqdnpath::datapath::lpm::LpmTable;
use fqdnpath::datapath::{Datapath, Packet, ReferenceDatapath, Verdict};
use fqdnpath::policy::compile::{Compiler, Endpoint};
use fqdnpath::policy::manifest::NetworkPolicy;

/// A datapath with `n` learned IPs (one /32 or /128 each) of `svc{k}.example.com`.
fn datapath(n: u32, v6: bool) -> ReferenceDatapath {
    let policies = common::client_policies(&["192.0.2.0/24", "198.51.100.0/24"]);
    let mut compiler = Compiler::new(&policies, &[common::client()]).unwrap();
    let mut dp = ReferenceDatapath::default();
    dp.program(&compiler, &|_| true).unwrap();
    common::learn_names(&mut compiler, n, v6, |deltas| dp.apply(deltas).unwrap());
    dp
}

fn bench_verdict(c: &mut Criterion) {
    let mut group = c.benchmark_group("verdict");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(3));
    for (family, v6) in [("ipv4", false), ("ipv6", true)] {
        for n in [1_000u32, 100_000] {
            let mut dp = datapath(n, v6);
            let mut rng = common::Rng::new(3);
            let packets: Vec<Packet> = (0..4096)
                .map(|_| {
                    let dst = common::learned_ip(rng.below(n as usize) as u32, v6);
                    common::client_packet(dst, 40_000)
                })
                .collect();
            assert_eq!(
                dp.egress(&packets[0], Timestamp::ZERO).verdict,
                Verdict::Forwarded
            );
            group.bench_with_input(BenchmarkId::new(family, n), &n, |b, _| {
                common::in_turn(b, &packets, |_, p| dp.egress(p, Timestamp::ZERO).verdict);
            });
        }
    }
    group.finish();
}

fn bench_lpm(c: &mut Criterion) {
    let mut group = c.benchmark_group("lpm");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(3));
    let n = 100_000u32;
    let mut rng = common::Rng::new(9);
    // Mostly host routes, some CIDRs, as an ipcache holds.
    let prefixes: Vec<(u32, u8)> = (0..n)
        .map(|i| match i % 100 {
            0 => ((rng.next() as u32) & 0xFFFF_0000, 16),
            1..=4 => ((rng.next() as u32) & 0xFFFF_FF00, 24),
            _ => (0x6400_0000 | i, 32),
        })
        .collect();
    let probes: Vec<u32> = (0..4096)
        .map(|_| 0x6400_0000 | rng.below(n as usize) as u32)
        .collect();
    let mut own = LpmTable::new(usize::MAX);
    let mut trie = prefix_trie::PrefixMap::<ipnet::Ipv4Net, u32>::new();
    for (i, (addr, len)) in prefixes.iter().enumerate() {
        own.insert(*addr, *len, i as u32).unwrap();
        trie.insert(
            ipnet::Ipv4Net::new(Ipv4Addr::from(*addr), *len)
                .unwrap()
                .trunc(),
            i as u32,
        );
    }
    for p in &probes {
        let a = own.lookup(*p).map(|(_, v)| *v);
        let b = trie
            .get_lpm(&ipnet::Ipv4Net::new(Ipv4Addr::from(*p), 32).unwrap())
            .map(|(_, v)| *v);
        assert_eq!(a, b);
    }
    group.bench_function("own_ipv4_100k", |b| {
        common::in_turn(b, &probes, |_, p| own.lookup(*p).map(|(l, _)| l));
    });
    group.bench_function("prefix_trie_ipv4_100k", |b| {
        common::in_turn(b, &probes, |_, p| {
            let key = ipnet::Ipv4Net::new(Ipv4Addr::from(*p), 32).unwrap();
            trie.get_lpm(&key).map(|(_, v)| *v)
        });
    });
    group.finish();
}

/// 1000 policies over 10 namespaces and 50 apps, each with an endpoint rule, an FQDN rule and
/// a CIDR rule; 100 endpoints.
fn large_input() -> (Vec<NetworkPolicy>, Vec<Endpoint>) {
    let mut yaml = String::new();
    for i in 0..1000 {
        let _ = write!(
            yaml,
            "---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {{name: p{i}, namespace: ns{}}}\nspec:\n  endpointSelector: {{matchLabels: {{app: app{}}}}}\n  egress:\n    - toEndpoints: [{{matchLabels: {{app: app{}}}}}]\n      toPorts: [{{ports: [{{port: \"80\", protocol: TCP}}]}}]\n    - toFQDNs: [{{matchName: svc{i}.example.com}}]\n      toPorts: [{{ports: [{{port: \"443\", protocol: TCP}}]}}]\n    - toCIDR: [10.{}.0.0/16]\n",
            i % 10,
            i % 50,
            (i + 1) % 50,
            i % 256
        );
    }
    let endpoints = (0..100u16)
        .map(|j| Endpoint {
            id: fqdnpath::names::EndpointId(j + 1),
            namespace: format!("ns{}", j % 10),
            name: format!("pod{j}"),
            labels: BTreeMap::from([("app".to_owned(), format!("app{}", j % 50))]),
            ips: vec![IpAddr::V4(Ipv4Addr::from(0x0A64_0000 | u32::from(j)))],
        })
        .collect();
    (common::policies(&yaml), endpoints)
}

fn bench_compile(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    let (policies, endpoints) = large_input();
    group.bench_function("1000_policies_100_endpoints", |b| {
        b.iter(|| {
            black_box(
                Compiler::new(&policies, &endpoints)
                    .unwrap()
                    .full_deltas()
                    .len(),
            )
        });
    });
    // The map changes of one DNS response (4 new IPs of a name whose identity exists).
    let mut compiler = Compiler::new(&policies, &endpoints).unwrap();
    for k in 0..1000 {
        let name = Fqdn::new(&format!("svc{k}.example.com"));
        compiler
            .update_ip(
                common::learned_ip(1_000_000 + k, false),
                BTreeSet::from([name]),
            )
            .unwrap();
    }
    group.sample_size(100);
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("delta_one_response_4_ips", |b| {
        let mut next = 0u32;
        b.iter(|| {
            let name = Fqdn::new(&format!("svc{}.example.com", next % 1000));
            let mut n = 0;
            for _ in 0..4 {
                n += compiler
                    .update_ip(
                        common::learned_ip(next, false),
                        BTreeSet::from([name.clone()]),
                    )
                    .unwrap()
                    .len();
                next += 1;
            }
            black_box(n)
        });
    });
    group.finish();
}

criterion_group!(benches, bench_verdict, bench_lpm, bench_compile);
criterion_main!(benches);
