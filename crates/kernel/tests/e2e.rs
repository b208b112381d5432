//! End to end with real packets: a client namespace and a "world" namespace joined by a veth
//! pair, the datapath attached on the client's side (TCX egress and ingress), a policy from a
//! `CiliumNetworkPolicy` with `toFQDNs`, and real sockets. The verdicts are read from what the
//! sockets see (a TCP handshake that completes or times out, datagrams that arrive or not)
//! and from the flow events of the ring buffer. Namespaces (and with them the veth pair and
//! the attachments) are removed when the test ends, also when it fails.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use fqdnpath_datapath::{Datapath, FlowEvent, MapSizes, PROTO_TCP, PROTO_UDP, Verdict};
use fqdnpath_kernel::netns::{Namespace, VethEnd, veth_pair};
use fqdnpath_kernel::{Clock, KernelDatapath, kernel_tests_enabled};
use fqdnpath_names::{EndpointId, Fqdn};
use fqdnpath_policy::compile::{Compiler, Endpoint};
use fqdnpath_policy::load_str;
use fqdnpath_policy::policymap::DropReason;

const POLICY: &str = r#"
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: client, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: client}}
  egress:
    - toFQDNs: [{matchName: server.test}]
      toPorts:
        - ports: [{port: "8080", protocol: TCP}, {port: "5353", protocol: UDP}]
"#;

/// How long a packet that was let through takes to show up: it never takes more than a few
/// milliseconds on a veth pair; a dropped one never shows up.
const SETTLE: Duration = Duration::from_millis(400);

struct Lab {
    // Dropped first: detaches before the namespaces go.
    dp: KernelDatapath,
    compiler: Compiler,
    client: Namespace,
    world: Namespace,
}

fn lab(test: &str) -> Option<Lab> {
    if !kernel_tests_enabled(test) {
        return None;
    }
    let client = Namespace::new("fqp-client").unwrap();
    let world = Namespace::new("fqp-world").unwrap();
    let c = VethEnd {
        iface: "c0".into(),
        cidr: "10.200.0.1/24".into(),
        mac: "02:fd:00:00:00:01".into(),
    };
    let w = VethEnd {
        iface: "w0".into(),
        cidr: "10.200.0.2/24".into(),
        mac: "02:fd:00:00:00:02".into(),
    };
    veth_pair((&client, &c), (&world, &w)).unwrap();
    // A second address on the world side, with no name behind it, and IPv6 on both.
    world
        .ip(&["addr", "add", "10.200.0.3/24", "dev", "w0"])
        .unwrap();
    for (ns, addr, dev) in [
        (&client, "fd20::1/64", "c0"),
        (&world, "fd20::2/64", "w0"),
        (&world, "fd20::3/64", "w0"),
    ] {
        ns.ip(&["-6", "addr", "add", addr, "dev", dev, "nodad"])
            .unwrap();
    }
    for (addr, family) in [("10.200.0.3", "-4"), ("fd20::2", "-6"), ("fd20::3", "-6")] {
        client
            .ip(&[
                family,
                "neigh",
                "replace",
                addr,
                "lladdr",
                &w.mac,
                "dev",
                "c0",
                "nud",
                "permanent",
            ])
            .unwrap();
    }
    world
        .ip(&[
            "-6",
            "neigh",
            "replace",
            "fd20::1",
            "lladdr",
            &c.mac,
            "dev",
            "w0",
            "nud",
            "permanent",
        ])
        .unwrap();

    let policies = load_str("client.yaml", POLICY).unwrap().network_policies();
    let endpoints = [Endpoint {
        id: EndpointId(7),
        namespace: "default".into(),
        name: "client".into(),
        labels: BTreeMap::from([("app".to_owned(), "client".to_owned())]),
        ips: vec!["10.200.0.1".parse().unwrap(), "fd20::1".parse().unwrap()],
    }];
    let compiler = Compiler::new(&policies, &endpoints).unwrap();
    let mut dp = KernelDatapath::load(MapSizes::default(), Clock::Kernel).unwrap();
    dp.program(&compiler, &|_| true).unwrap();
    dp.attach("c0", Some(client.name())).unwrap();
    assert!(dp.attachments()[0].is_tcx(), "this kernel has TCX");
    Some(Lab {
        dp,
        compiler,
        client,
        world,
    })
}

impl Lab {
    /// Learns (or, with no name, forgets) `addr` for server.test, as a DNS answer would.
    fn resolve(&mut self, addr: &str, name: Option<&str>) {
        let names: BTreeSet<Fqdn> = name.into_iter().map(Fqdn::new).collect();
        let deltas = self
            .compiler
            .update_ip(addr.parse().unwrap(), names)
            .unwrap();
        self.dp.apply(&deltas).unwrap();
    }

    fn events(&mut self) -> Vec<FlowEvent> {
        self.dp.events()
    }
}

fn sock(addr: &str, port: u16) -> SocketAddr {
    SocketAddr::new(addr.parse().unwrap(), port)
}

fn connects(client: &Namespace, to: SocketAddr) -> Result<TcpStream, std::io::Error> {
    let _inside = client.enter().unwrap();
    TcpStream::connect_timeout(&to, SETTLE)
}

fn egress_events<'a>(
    events: &'a [FlowEvent],
    to: &'a str,
    proto: u8,
) -> impl Iterator<Item = &'a FlowEvent> + 'a {
    let dst: IpAddr = to.parse().unwrap();
    events
        .iter()
        .filter(move |e| e.egress && e.packet.dst == dst && e.packet.proto == proto)
}

#[test]
fn tcp_and_udp_reach_a_resolved_name_and_nothing_else() {
    let Some(mut lab) = lab("tcp_and_udp_reach_a_resolved_name_and_nothing_else") else {
        return;
    };
    // Dual-stack sockets on every address of the world side: IPv4 arrives mapped.
    let (tcp, udp) = {
        let _inside = lab.world.enter().unwrap();
        (
            TcpListener::bind("[::]:8080").unwrap(),
            UdpSocket::bind("[::]:5353").unwrap(),
        )
    };
    udp.set_read_timeout(Some(SETTLE)).unwrap();
    let (tcp4, tcp6, udp4, udp6) = (&tcp, &tcp, &udp, &udp);
    let client_ns = lab.client.name().to_owned();
    let client_udp = |addr: &str| {
        let _inside = fqdnpath_kernel::netns::NetNs::enter(&client_ns).unwrap();
        UdpSocket::bind(if addr.contains(':') {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        })
        .unwrap()
    };

    // Nothing resolved yet: server.test's address is `world`, and dropped.
    let err = connects(&lab.client, sock("10.200.0.2", 8080)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);

    // The DNS answer arrives: 10.200.0.2 and fd20::2 are server.test.
    lab.resolve("10.200.0.2", Some("server.test"));
    lab.resolve("fd20::2", Some("server.test"));
    let mut stream = connects(&lab.client, sock("10.200.0.2", 8080)).unwrap();
    let (mut accepted, _) = tcp4.accept().unwrap();
    accepted.write_all(b"hello").unwrap();
    let mut buf = [0u8; 5];
    stream.set_read_timeout(Some(SETTLE)).unwrap();
    stream.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    let stream6 = connects(&lab.client, sock("fd20::2", 8080)).unwrap();
    drop(tcp6.accept().unwrap());
    drop(stream6);

    // The address next door has no name: dropped, over TCP and UDP, on both families.
    assert_eq!(
        connects(&lab.client, sock("10.200.0.3", 8080))
            .unwrap_err()
            .kind(),
        ErrorKind::TimedOut
    );
    assert_eq!(
        connects(&lab.client, sock("fd20::3", 8080))
            .unwrap_err()
            .kind(),
        ErrorKind::TimedOut
    );
    for (to, server) in [("10.200.0.2", &udp4), ("fd20::2", &udp6)] {
        let c = client_udp(to);
        c.send_to(b"allowed", sock(to, 5353)).unwrap();
        let mut buf = [0u8; 16];
        let (n, _) = server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"allowed");
    }
    for (to, server) in [("10.200.0.3", &udp4), ("fd20::3", &udp6)] {
        let c = client_udp(to);
        c.send_to(b"denied", sock(to, 5353)).unwrap();
        let mut buf = [0u8; 16];
        let err = server.recv_from(&mut buf).unwrap_err();
        assert!(matches!(
            err.kind(),
            ErrorKind::WouldBlock | ErrorKind::TimedOut
        ));
    }
    // The wrong port to the right address: dropped too.
    let c = client_udp("10.200.0.2");
    c.send_to(b"port", sock("10.200.0.2", 5354)).unwrap();

    // The flow events say the same.
    let events = lab.events();
    let tcp_to_2: Vec<_> = egress_events(&events, "10.200.0.2", PROTO_TCP).collect();
    assert!(tcp_to_2.iter().any(|e| e.verdict == Verdict::Dropped
        && e.drop_reason == Some(DropReason::PolicyDenied)
        && e.dst_identity.0 == 2));
    assert!(
        tcp_to_2
            .iter()
            .any(|e| e.verdict == Verdict::Forwarded && e.dst_identity.is_local())
    );
    for to in ["10.200.0.3", "fd20::3"] {
        let all: Vec<_> = egress_events(&events, to, PROTO_TCP)
            .chain(egress_events(&events, to, PROTO_UDP))
            .collect();
        assert!(!all.is_empty(), "events for {to}");
        assert!(
            all.iter().all(|e| e.verdict == Verdict::Dropped),
            "{to}: {all:?}"
        );
    }
    assert!(
        egress_events(&events, "10.200.0.2", PROTO_UDP)
            .any(|e| e.packet.dport == 5354 && e.drop_reason == Some(DropReason::PolicyDenied))
    );
    // The server's answers came back in as replies.
    assert!(events.iter().any(|e| !e.egress
        && e.is_reply
        && e.packet.src == "10.200.0.2".parse::<IpAddr>().unwrap()));
    let counters = lab.dp.counters().unwrap();
    assert!(counters.forwarded > 0 && counters.dropped > 0);
    assert_eq!(counters.events_lost, 0);
    drop(stream);
    drop(accepted);
}

#[test]
fn a_live_connection_is_cut_when_its_address_loses_the_name() {
    let Some(mut lab) = lab("a_live_connection_is_cut_when_its_address_loses_the_name") else {
        return;
    };
    let listener = {
        let _inside = lab.world.enter().unwrap();
        TcpListener::bind("10.200.0.2:8080").unwrap()
    };
    lab.resolve("10.200.0.2", Some("server.test"));
    let mut stream = connects(&lab.client, sock("10.200.0.2", 8080)).unwrap();
    let (mut accepted, _) = listener.accept().unwrap();
    accepted.set_read_timeout(Some(SETTLE)).unwrap();
    stream.write_all(b"one").unwrap();
    let mut buf = [0u8; 3];
    accepted.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"one");
    // The name's TTL runs out and the cache GC forgets the address: every egress packet is
    // judged, so the established connection's next segment is dropped.
    lab.resolve("10.200.0.2", None);
    lab.events();
    stream.write_all(b"two").unwrap();
    let err = accepted.read_exact(&mut buf).unwrap_err();
    assert!(matches!(
        err.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut
    ));
    let events = lab.events();
    assert!(
        egress_events(&events, "10.200.0.2", PROTO_TCP)
            .any(|e| e.verdict == Verdict::Dropped && e.packet.dport == 8080)
    );
    // Learned again: the retransmission gets through.
    lab.resolve("10.200.0.2", Some("server.test"));
    accepted
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    accepted.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"two");
}

#[test]
fn namespaces_and_links_are_gone_afterwards() {
    if !kernel_tests_enabled("namespaces_and_links_are_gone_afterwards") {
        return;
    }
    let name = {
        let lab = lab("namespaces_and_links_are_gone_afterwards").unwrap();
        lab.client.name().to_owned()
    };
    assert!(!std::path::Path::new(&format!("/var/run/netns/{name}")).exists());
    // A failing test unwinds through the same drops.
    let result = std::panic::catch_unwind(|| {
        let lab = lab("namespaces_and_links_are_gone_afterwards").unwrap();
        let name = lab.client.name().to_owned();
        std::panic::panic_any(name);
    });
    let name = *result.unwrap_err().downcast::<String>().unwrap();
    assert!(!std::path::Path::new(&format!("/var/run/netns/{name}")).exists());
}

/// The filters `tc` lists on `dev` in `ns` for `direction` (ingress or egress).
fn tc_filters(ns: &str, dev: &str, direction: &str) -> String {
    let out = std::process::Command::new("ip")
        .args([
            "netns", "exec", ns, "tc", "filter", "show", "dev", dev, direction,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_netlink_fallback_enforces_and_detaches_cleanly() {
    if !kernel_tests_enabled("the_netlink_fallback_enforces_and_detaches_cleanly") {
        return;
    }
    let mut lab = lab("the_netlink_fallback_enforces_and_detaches_cleanly").unwrap();
    // Swap the TCX links for netlink filters.
    lab.dp.detach().unwrap();
    lab.dp
        .attach_with(
            "c0",
            Some(lab.client.name()),
            fqdnpath_kernel::AttachMode::Netlink,
        )
        .unwrap();
    assert!(!lab.dp.attachments()[0].is_tcx());
    for direction in ["egress", "ingress"] {
        assert!(
            tc_filters(lab.client.name(), "c0", direction).contains("fqdnpath"),
            "a {direction} filter"
        );
    }
    let udp = {
        let _inside = lab.world.enter().unwrap();
        UdpSocket::bind("[::]:5353").unwrap()
    };
    udp.set_read_timeout(Some(SETTLE)).unwrap();
    let send = |lab: &Lab| {
        let _inside = lab.client.enter().unwrap();
        let c = UdpSocket::bind("0.0.0.0:0").unwrap();
        c.send_to(b"x", sock("10.200.0.2", 5353)).unwrap();
    };
    let mut buf = [0u8; 4];
    send(&lab);
    assert!(udp.recv_from(&mut buf).is_err(), "not learned: dropped");
    lab.resolve("10.200.0.2", Some("server.test"));
    send(&lab);
    assert!(udp.recv_from(&mut buf).is_ok(), "learned: delivered");
    // Detached: the filters are gone, and nothing is judged any more.
    lab.dp.detach().unwrap();
    for direction in ["egress", "ingress"] {
        assert!(
            !tc_filters(lab.client.name(), "c0", direction).contains("fqdnpath"),
            "no {direction} filter left"
        );
    }
    lab.resolve("10.200.0.2", None);
    send(&lab);
    assert!(udp.recv_from(&mut buf).is_ok(), "no program, no drop");
}
