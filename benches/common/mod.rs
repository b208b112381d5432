//! Inputs shared by the benches: deterministic selector sets, names and DNS responses, and
//! the client endpoint, its policies, its learned addresses and its packets of the datapath
//! benches; and the loop that benches a routine over a set of inputs in turn.
#![allow(dead_code, unreachable_pub)]
#![expect(clippy::cast_possible_truncation, reason = "bench inputs are small")]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::Bencher;
use fqdnpath::cache::Fqdn;
use fqdnpath::datapath::conntrack::TcpFlags;
use fqdnpath::datapath::{PROTO_TCP, Packet};
use fqdnpath::policy::compile::{Compiler, Delta, Endpoint};
use fqdnpath::policy::load_str;
use fqdnpath::policy::manifest::NetworkPolicy;

/// A tiny deterministic generator (`SplitMix64`), so every run benches the same inputs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One selector of a realistic policy set, as `(is_pattern, text)`.
///
/// The mix: 60% `matchName` of service names, 25% `*.` patterns, 8% `**.` patterns, 7% globs
/// inside a label (`api-17-*.example.net`, `*-prod17.example.io`).
pub fn selector(i: usize) -> (bool, String) {
    match i % 100 {
        0..=59 => (
            false,
            format!("svc{i}.team{}.example{}.com", i % 97, i % 13),
        ),
        60..=84 => (true, format!("*.svc{i}.example.com")),
        85..=92 => (true, format!("**.zone{i}.example.org")),
        93..=96 => (true, format!("api-{i}-*.example.net")),
        _ => (true, format!("*-prod{i}.example.io")),
    }
}

pub fn selectors(n: usize) -> Vec<(bool, String)> {
    (0..n).map(selector).collect()
}

/// Names to match against a set of `n` selectors: 3/4 are hits of some selector (of every
/// kind), 1/4 are misses that share suffixes with the selectors.
pub fn names(n: usize, count: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|k| {
            let i = rng.below(n);
            if k % 4 == 3 {
                return format!("miss{k}.svc{}.example.com.", n + i);
            }
            match i % 100 {
                0..=59 => format!("svc{i}.team{}.example{}.com.", i % 97, i % 13),
                60..=84 => format!("web{k}.svc{i}.example.com."),
                85..=92 => format!("a{k}.b.zone{i}.example.org."),
                93..=96 => format!("api-{i}-eu{k}.example.net."),
                _ => format!("db{k}-prod{i}.example.io."),
            }
        })
        .collect()
}

/// Cilium's anchored regex for a selector (matchpattern.ToAnchoredRegexp of the sanitised
/// form), for the baselines.
pub fn cilium_regex(selector: &(bool, String)) -> String {
    let text = format!("{}.", selector.1.to_ascii_lowercase());
    let escaped = text.replace('.', "[.]");
    let escaped = match escaped.strip_prefix("**[.]") {
        Some(rest) => format!("([-a-zA-Z0-9_]+([.][-a-zA-Z0-9_]+){{0,}})[.]{rest}"),
        None => escaped,
    };
    format!("^{}$", escaped.replace('*', "[-a-zA-Z0-9_]*"))
}

pub fn ip4(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0A00_0000 | (i & 0x00FF_FFFF)))
}

/// The network policies of a YAML text.
pub fn policies(yaml: &str) -> Vec<NetworkPolicy> {
    load_str("bench.yaml", yaml).unwrap().network_policies()
}

/// The client's policy: `*.example.com` on TCP 443.
const CLIENT_POLICY: &str = r#"
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: client, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: client}}
  egress:
    - toFQDNs: [{matchPattern: "*.example.com"}]
      toPorts: [{ports: [{port: "443", protocol: TCP}]}]
"#;

/// The client's policy ([`client`]): `*.example.com` on TCP 443, and a rule to `cidrs` on any
/// port unless there are none.
pub fn client_policies(cidrs: &[&str]) -> Vec<NetworkPolicy> {
    let mut yaml = CLIENT_POLICY.to_owned();
    if !cidrs.is_empty() {
        writeln!(yaml, "    - toCIDR: [{}]", cidrs.join(", ")).unwrap();
    }
    policies(&yaml)
}

/// The client pod the datapath benches judge (`default/client`, `app: client`, 10.0.0.1).
pub fn client() -> Endpoint {
    Endpoint {
        id: fqdnpath::names::EndpointId(1),
        namespace: "default".into(),
        name: "client".into(),
        labels: BTreeMap::from([("app".to_owned(), "client".to_owned())]),
        ips: vec!["10.0.0.1".parse().unwrap()],
    }
}

/// The `i`-th address learned for the client's names: in `100.0.0.0/8`, or `2001:db8::/32`.
pub fn learned_ip(i: u32, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(
            0x2001_0db8_0000_0000_0000_0000_0000_0000_u128 | u128::from(i),
        ))
    } else {
        IpAddr::V4(Ipv4Addr::from(0x6400_0000 | i))
    }
}

/// Learns `n` addresses ([`learned_ip`]) of 1000 names `svc{k}.example.com`, and hands the
/// map changes of each to `apply`.
pub fn learn_names(compiler: &mut Compiler, n: u32, v6: bool, mut apply: impl FnMut(&[Delta])) {
    for i in 0..n {
        let name = Fqdn::new(&format!("svc{}.example.com", i % 1000));
        let deltas = compiler
            .update_ip(learned_ip(i, v6), BTreeSet::from([name]))
            .unwrap();
        apply(&deltas);
    }
}

/// A TCP packet without flags from the client (10.0.0.1) port `sport` to `dst`:443.
pub fn client_packet(dst: IpAddr, sport: u16) -> Packet {
    Packet {
        src: "10.0.0.1".parse().unwrap(),
        dst,
        proto: PROTO_TCP,
        sport,
        dport: 443,
        flags: TcpFlags::default(),
    }
}

/// Benches `routine` on `inputs` in turn (their number a power of two, so that the turn is a
/// mask), given the number of the iteration too.
pub fn in_turn<T, R>(b: &mut Bencher<'_>, inputs: &[T], mut routine: impl FnMut(u64, &T) -> R) {
    assert!(inputs.len().is_power_of_two());
    let mask = inputs.len() - 1;
    let mut i = 0u64;
    b.iter(|| {
        let r = routine(i, &inputs[i as usize & mask]);
        i += 1;
        black_box(r)
    });
}
