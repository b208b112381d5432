//! The differential property test, kernel against model: random maps (IPv4 and IPv6 ipcache
//! prefixes of every length, policy entries with identities, the "any" identity, protocol
//! wildcards, port prefixes from port ranges, allows, denies and DNS redirects), random map
//! changes between packets (including ones that overflow small maps and fail closed), and
//! random packets and frames (hits, misses, replies, unknown sources, TCP flags, later
//! fragments, cut headers), on a virtual clock that jumps across conntrack lifetimes.
//! The kernel's flow event must equal the model's, field for field, for every packet, and so
//! must the results of applying changes, the listed entries, capacities and the conntrack GC.
//!
//! 2000 cases per run; one kernel datapath per map size, reset between cases (loading is the
//! verifier's work, the maps are what is under test).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use fqdnpath_datapath::conntrack::TcpFlags;
use fqdnpath_datapath::frame::build_frame;
use fqdnpath_datapath::{Datapath, MapSizes, PROTO_TCP, PROTO_UDP, Packet, ReferenceDatapath};
use fqdnpath_kernel::{Clock, KernelDatapath, kernel_tests_enabled};
use fqdnpath_names::FqdnSelector;
use fqdnpath_names::{EndpointId, Timestamp};
use fqdnpath_policy::compile::{Delta, Prefix};
use fqdnpath_policy::identity::Identity;
use fqdnpath_policy::policymap::{DnsAllow, FqdnSelectorKey, PolicyAction, PolicyKey};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

const V4_NETS: &[(u32, u8)] = &[
    (0xC000_0200, 24),
    (0xC000_0000, 16),
    (0xC000_0280, 25),
    (0xC633_6400, 24),
    (0x0A00_0000, 8),
    (0, 0),
];
const V6_NETS: &[(u128, u8)] = &[
    (0x2001_0db8_0000_0000_0000_0000_0000_0000, 32),
    (0x2001_0db8_0001_0000_0000_0000_0000_0000, 48),
    (0x2001_0db8_0001_0000_0000_0000_0000_0000, 64),
    (0xfd00_0000_0000_0000_0000_0000_0000_0000, 8),
    (0, 0),
];
const IDENTITIES: &[u32] = &[2, 256, 257, 258, 16_777_217, 16_777_218];
const PORTS: &[u16] = &[53, 80, 443, 8000, 8080, 8443];
const PROTOS: &[u8] = &[PROTO_TCP, PROTO_UDP, 132, 1, 58];
const ENDPOINTS: u16 = 3;

fn v4_host(net: usize, host: u8) -> Ipv4Addr {
    let (addr, len) = V4_NETS[net];
    let span = if len == 0 { u32::MAX } else { !0u32 >> len };
    Ipv4Addr::from(addr | (u32::from(host) & span))
}

fn v6_host(net: usize, host: u8) -> Ipv6Addr {
    Ipv6Addr::from(V6_NETS[net].0 | u128::from(host))
}

fn endpoint_addr(ep: u16, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(
            0xfd00_0000_0000_0000_0000_0000_0000_0000 | u128::from(ep),
        ))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, u8::try_from(ep).unwrap()))
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// A map change.
    Delta(Delta),
    /// An egress packet from an endpoint (or from nowhere), after `wait`.
    Egress { packet: Packet, wait: Duration },
    /// The reply to the n-th packet sent so far.
    Reply { nth: prop::sample::Index },
    /// A flow opened by a peer towards an endpoint.
    Inbound { packet: Packet },
    /// A mangled frame (cut, or a later fragment) of a packet.
    Frame {
        packet: Packet,
        cut: usize,
        fragment: bool,
    },
    /// The conntrack GC.
    Gc,
    /// An endpoint address registered again: to another endpoint, or with another identity
    /// (the kernel's per-CPU endpoint cache must not outlive it).
    Endpoint {
        addr_of: u16,
        v6: bool,
        endpoint: u16,
        identity: Identity,
    },
}

/// The host route to `host`, or else the network `addr/len` itself.
fn host_or_net(is_host: bool, host: IpAddr, addr: IpAddr, len: u8) -> Prefix {
    if is_host {
        Prefix::host(host)
    } else {
        Prefix { addr, len }
    }
}

fn prefix() -> impl Strategy<Value = Prefix> {
    prop_oneof![
        (0..V4_NETS.len(), any::<u8>(), any::<bool>()).prop_map(|(net, host, is_host)| {
            let (addr, len) = V4_NETS[net];
            let host = IpAddr::V4(v4_host(net, host));
            host_or_net(is_host, host, IpAddr::V4(addr.into()), len)
        }),
        (0..V6_NETS.len(), any::<u8>(), any::<bool>()).prop_map(|(net, host, is_host)| {
            let (addr, len) = V6_NETS[net];
            let host = IpAddr::V6(v6_host(net, host));
            host_or_net(is_host, host, IpAddr::V6(addr.into()), len)
        }),
    ]
}

fn policy_key() -> impl Strategy<Value = PolicyKey> {
    (
        prop_oneof![Just(0u32), prop::sample::select(IDENTITIES)],
        prop_oneof![1 => Just(0u8), 4 => prop::sample::select(PROTOS)],
        prop::sample::select(PORTS),
        prop::sample::select(&[0u8, 4, 8, 12, 14, 15, 16][..]),
    )
        .prop_map(|(identity, proto, port, len)| {
            if proto == 0 {
                return PolicyKey::l3(Identity(identity));
            }
            let mask = u16::MAX.checked_shl(16 - u32::from(len)).unwrap_or(0);
            PolicyKey {
                identity: Identity(identity),
                proto,
                port: port & mask,
                port_prefix_len: len,
            }
        })
}

fn action() -> impl Strategy<Value = PolicyAction> {
    prop_oneof![
        4 => Just(PolicyAction::Allow),
        2 => Just(PolicyAction::Deny),
        1 => Just(PolicyAction::RedirectDns(DnsAllow::All)),
        1 => Just(PolicyAction::RedirectDns(DnsAllow::Selectors(BTreeSet::from([
            FqdnSelectorKey::from(&FqdnSelector::match_pattern("*.example.com").unwrap())
        ])))),
    ]
}

fn delta() -> impl Strategy<Value = Delta> {
    prop_oneof![
        5 => (prefix(), prop::sample::select(IDENTITIES))
            .prop_map(|(prefix, id)| Delta::IpcacheUpsert { prefix, identity: Identity(id) }),
        1 => prefix().prop_map(|prefix| Delta::IpcacheDelete { prefix }),
        5 => (1..=ENDPOINTS, policy_key(), action())
            .prop_map(|(endpoint, key, action)| Delta::PolicyUpsert { endpoint: EndpointId(endpoint), key, action }),
        1 => (1..=ENDPOINTS, policy_key()).prop_map(|(endpoint, key)| Delta::PolicyDelete { endpoint: EndpointId(endpoint), key }),
    ]
}

fn packet() -> impl Strategy<Value = Packet> {
    (
        prop_oneof![9 => 1..=ENDPOINTS, 1 => Just(9u16)],
        any::<bool>(),
        (any::<prop::sample::Index>(), any::<u8>()),
        prop::sample::select(PROTOS),
        any::<u16>(),
        prop_oneof![4 => prop::sample::select(PORTS), 1 => any::<u16>()],
        any::<(bool, bool, bool)>(),
    )
        .prop_map(
            |(ep, v6, (net, host), proto, sport, dport, (syn, fin, rst))| {
                let dst = if v6 {
                    IpAddr::V6(v6_host(net.index(V6_NETS.len()), host))
                } else {
                    IpAddr::V4(v4_host(net.index(V4_NETS.len()), host))
                };
                let has_ports = matches!(proto, PROTO_TCP | PROTO_UDP | 132);
                Packet {
                    src: endpoint_addr(ep, v6),
                    dst,
                    proto,
                    sport: if has_ports { sport } else { 0 },
                    dport: if has_ports { dport } else { 0 },
                    flags: if proto == PROTO_TCP {
                        TcpFlags { syn, fin, rst }
                    } else {
                        TcpFlags::default()
                    },
                }
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => delta().prop_map(Op::Delta),
        8 => (packet(), prop::sample::select(&[0u64, 0, 1, 9, 30, 61, 21_601][..]))
            .prop_map(|(packet, secs)| Op::Egress { packet, wait: Duration::from_secs(secs) }),
        2 => any::<prop::sample::Index>().prop_map(|nth| Op::Reply { nth }),
        1 => packet().prop_map(|p| Op::Inbound {
            packet: Packet { src: p.dst, dst: p.src, sport: p.dport, dport: p.sport, ..p },
        }),
        1 => (packet(), 0usize..70, any::<bool>())
            .prop_map(|(packet, cut, fragment)| Op::Frame { packet, cut, fragment }),
        1 => Just(Op::Gc),
        1 => (1..=ENDPOINTS, any::<bool>(), 1..=ENDPOINTS, 0u32..3).prop_map(
            |(addr_of, v6, endpoint, n)| Op::Endpoint {
                addr_of,
                v6,
                endpoint,
                identity: Identity(16_777_300 + n),
            }
        ),
    ]
}

#[derive(Clone, Debug)]
struct Case {
    small: bool,
    initial: Vec<Delta>,
    ops: Vec<Op>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::bool::weighted(0.2),
        prop::collection::vec(delta(), 0..40),
        prop::collection::vec(op(), 1..40),
    )
        .prop_map(|(small, initial, ops)| Case {
            small,
            initial,
            ops,
        })
}

const SMALL: MapSizes = MapSizes {
    ipcache4: 6,
    ipcache6: 4,
    policy: 12,
    conntrack: 4096,
};
const LARGE: MapSizes = MapSizes {
    ipcache4: 4096,
    ipcache6: 4096,
    policy: 4096,
    conntrack: 4096,
};

/// Registers an endpoint address in both datapaths, which must agree on the result.
fn register(
    model: &mut ReferenceDatapath,
    kernel: &mut KernelDatapath,
    endpoint: u16,
    addr: IpAddr,
    identity: Identity,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        model.set_endpoint(EndpointId(endpoint), addr, identity),
        kernel.set_endpoint(EndpointId(endpoint), addr, identity),
        "endpoint {} at {}",
        endpoint,
        addr
    );
    Ok(())
}

fn run_case(case: &Case, kernel: &mut KernelDatapath) -> Result<(), TestCaseError> {
    kernel
        .reset()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut model = ReferenceDatapath::new(if case.small { SMALL } else { LARGE });
    for ep in 1..=ENDPOINTS {
        let identity = Identity(16_777_300 + u32::from(ep));
        for v6 in [false, true] {
            register(&mut model, kernel, ep, endpoint_addr(ep, v6), identity)?;
        }
    }
    prop_assert_eq!(model.apply(&case.initial), kernel.apply(&case.initial));
    let mut now = Timestamp::from_secs(1);
    let mut sent: Vec<Packet> = Vec::new();
    for (i, op) in case.ops.iter().enumerate() {
        match op {
            Op::Endpoint {
                addr_of,
                v6,
                endpoint,
                identity,
            } => register(
                &mut model,
                kernel,
                *endpoint,
                endpoint_addr(*addr_of, *v6),
                *identity,
            )?,
            Op::Delta(delta) => {
                let deltas = std::slice::from_ref(delta);
                prop_assert_eq!(model.apply(deltas), kernel.apply(deltas), "op {}", i);
            }
            Op::Egress { packet, wait } => {
                now = now + *wait;
                let want = model.egress(packet, now);
                let got = kernel.egress(packet, now);
                prop_assert_eq!(&got, &want, "op {}: {:?}", i, packet);
                sent.push(*packet);
            }
            Op::Reply { nth } => {
                if sent.is_empty() {
                    continue;
                }
                let p = sent[nth.index(sent.len())];
                let reply = Packet {
                    src: p.dst,
                    dst: p.src,
                    sport: p.dport,
                    dport: p.sport,
                    ..p
                };
                prop_assert_eq!(
                    kernel.ingress(&reply, now),
                    model.ingress(&reply, now),
                    "op {}",
                    i
                );
            }
            Op::Inbound { packet } => {
                prop_assert_eq!(
                    kernel.ingress(packet, now),
                    model.ingress(packet, now),
                    "op {}",
                    i
                );
            }
            Op::Frame {
                packet,
                cut,
                fragment,
            } => {
                let mut frame = build_frame(packet, 8);
                let ip_header = if packet.dst.is_ipv4() { 34 } else { 54 };
                if *fragment && packet.dst.is_ipv4() {
                    frame[14 + 7] = 0x20;
                }
                // BPF_PROG_TEST_RUN refuses IP frames shorter than their IP header.
                frame.truncate((ip_header + *cut).min(frame.len()));
                prop_assert_eq!(
                    kernel.egress_frame(&frame, now),
                    model.egress_frame(&frame, now),
                    "op {}: {:02x?}",
                    i,
                    frame
                );
            }
            Op::Gc => {
                prop_assert_eq!(
                    kernel.conntrack_gc(now),
                    model.conntrack_gc(now),
                    "op {}",
                    i
                );
            }
        }
    }
    compare_maps(kernel, &mut model, now)
}

/// The maps and the conntrack GC agree at the end of a case.
fn compare_maps(
    kernel: &mut KernelDatapath,
    model: &mut ReferenceDatapath,
    now: Timestamp,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(kernel.ipcache_entries(), model.ipcache_entries());
    for ep in 1..=ENDPOINTS {
        prop_assert_eq!(
            kernel.policy_entries(EndpointId(ep)),
            model.policy_entries(EndpointId(ep))
        );
    }
    let (k, m) = (kernel.capacity(), model.capacity());
    prop_assert_eq!(
        (k.ipcache4, k.ipcache6, k.policy),
        (m.ipcache4, m.ipcache6, m.policy)
    );
    prop_assert_eq!(
        (k.conntrack.used, k.conntrack6.used),
        (m.conntrack.used, m.conntrack6.used)
    );
    prop_assert_eq!(kernel.conntrack_gc(now), model.conntrack_gc(now));
    let (k, m) = (kernel.capacity(), model.capacity());
    prop_assert_eq!(
        (k.conntrack.used, k.conntrack6.used),
        (m.conntrack.used, m.conntrack6.used)
    );
    Ok(())
}

#[test]
fn the_kernel_judges_every_packet_as_the_model() {
    if !kernel_tests_enabled("the_kernel_judges_every_packet_as_the_model") {
        return;
    }
    // TestRunner::run takes a `Fn`: the datapaths are borrowed mutably through cells.
    let small = std::cell::RefCell::new(KernelDatapath::load(SMALL, Clock::Virtual).unwrap());
    let large = std::cell::RefCell::new(KernelDatapath::load(LARGE, Clock::Virtual).unwrap());
    let cases = std::env::var("FQDNPATH_DIFFERENTIAL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let operations = std::cell::Cell::new(0usize);
    let result = runner.run(&case(), |case| {
        operations.set(operations.get() + case.ops.len());
        let kernel = if case.small { &small } else { &large };
        run_case(&case, &mut kernel.borrow_mut())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    eprintln!(
        "{cases} cases, {} operations (shrinking included): the kernel agreed with the model",
        operations.get()
    );
}
