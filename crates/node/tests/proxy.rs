//! The node's DNS proxy and GC loop on real loopback sockets, over the reference datapath (no
//! root, no eBPF): a query the DNS rules allow is forwarded and its answer reaches the client
//! only once the datapath holds the address; a query they do not allow is refused without
//! asking upstream; over TCP as over UDP; and the GC loop takes the address out again once
//! its TTL has run out.
//!
//! The client is 127.0.0.1, the proxy listens on 127.0.0.2 and the upstream server on
//! 127.0.0.3 (all of 127/8 is loopback on Linux).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use fqdnpath_agent::{Agent, AgentConfig};
use fqdnpath_cache::wire::ResponseBuilder;
use fqdnpath_cache::{Observation, observe};
use fqdnpath_datapath::{Datapath, MapSizes, PROTO_TCP, ReferenceDatapath};
use fqdnpath_node::demo::{CLIENT_ENDPOINT, endpoints};
use fqdnpath_node::transport::{read_frame, write_frame};
use fqdnpath_node::{DnsProxy, GcLoop, GcPass, Node, SharedNode, lock};
use fqdnpath_policy::load_str;
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};

const CLIENT: Ipv4Addr = Ipv4Addr::LOCALHOST;
const PROXY: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const UPSTREAM: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
const APP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);

const POLICY: &str = r#"
apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: client-egress
  namespace: default
spec:
  endpointSelector:
    matchLabels:
      app: client
  egress:
    - toEndpoints:
        - matchLabels:
            k8s:io.kubernetes.pod.namespace: kube-system
            k8s:k8s-app: node-local-dns
      toPorts:
        - ports:
            - port: "53"
              protocol: UDP
            - port: "53"
              protocol: TCP
          rules:
            dns:
              - matchPattern: "*.demo.test"
    - toFQDNs:
        - matchName: app.demo.test
      toPorts:
        - ports:
            - port: "8080"
              protocol: TCP
"#;

/// The node: the policy above, the demo's client and node-local-dns endpoints (at `CLIENT`
/// and `PROXY`), the reference datapath programmed with the client.
fn node() -> SharedNode<ReferenceDatapath> {
    let policies = load_str("policy.yaml", POLICY).unwrap().network_policies();
    let endpoints = endpoints(CLIENT, PROXY);
    let agent = Agent::new(AgentConfig::default(), &policies, &endpoints).unwrap();
    let mut dp = ReferenceDatapath::new(MapSizes::default());
    dp.program(agent.compiler(), &|id| id == CLIENT_ENDPOINT)
        .unwrap();
    Node::new(agent, dp).shared()
}

/// Whether the datapath's ipcache holds `addr`/32.
fn holds(node: &SharedNode<ReferenceDatapath>, addr: Ipv4Addr) -> bool {
    lock(node)
        .datapath()
        .ipcache_entries()
        .iter()
        .any(|(p, _)| p.addr == IpAddr::V4(addr) && p.len == 32)
}

/// An upstream server on UDP and TCP that answers every question with `APP`, TTL `ttl`,
/// and counts the questions.
struct Upstream {
    addr: SocketAddr,
    asked: Arc<AtomicUsize>,
}

fn answer(query: &[u8], ttl: u32) -> Option<Vec<u8>> {
    let q = Message::from_vec(query).ok()?;
    let question = q.queries.first()?;
    ResponseBuilder::new(q.metadata.id, &question.name.to_ascii(), RecordType::A)
        .address(&question.name.to_ascii(), IpAddr::V4(APP), ttl)
        .to_wire()
        .ok()
}

fn upstream(ttl: u32, stop: &Arc<AtomicBool>) -> Upstream {
    let udp = UdpSocket::bind((UPSTREAM, 0)).unwrap();
    let addr = udp.local_addr().unwrap();
    let tcp = TcpListener::bind(addr).unwrap();
    let asked = Arc::new(AtomicUsize::new(0));
    let (count, halt) = (asked.clone(), stop.clone());
    thread::spawn(move || {
        udp.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let mut buf = [0u8; 4096];
        while !halt.load(Ordering::Relaxed) {
            if let Ok((n, from)) = udp.recv_from(&mut buf) {
                count.fetch_add(1, Ordering::SeqCst);
                if let Some(a) = answer(&buf[..n], ttl) {
                    udp.send_to(&a, from).unwrap();
                }
            }
        }
    });
    let (count, halt) = (asked.clone(), stop.clone());
    thread::spawn(move || {
        fqdnpath_node::transport::accept_loop(&tcp, &halt, |mut stream, _| {
            while let Ok(Some(query)) = read_frame(&mut stream) {
                count.fetch_add(1, Ordering::SeqCst);
                let Some(a) = answer(&query, ttl) else { break };
                if write_frame(&mut stream, &a).is_err() {
                    break;
                }
            }
        })
        .unwrap();
    });
    Upstream { addr, asked }
}

/// The proxy on UDP and TCP at 127.0.0.2 (the same port), serving until `stop`.
fn serve(proxy: &DnsProxy<ReferenceDatapath>, stop: &Arc<AtomicBool>) -> SocketAddr {
    let udp = UdpSocket::bind((PROXY, 0)).unwrap();
    let at = udp.local_addr().unwrap();
    let tcp = TcpListener::bind(at).unwrap();
    let (p, halt) = (proxy.clone(), stop.clone());
    thread::spawn(move || p.serve_udp(&udp, &halt).unwrap());
    let (p, halt) = (proxy.clone(), stop.clone());
    thread::spawn(move || p.serve_tcp(&tcp, &halt).unwrap());
    at
}

fn query(name: &str, id: u16) -> Vec<u8> {
    let mut message = Message::query();
    message.metadata.id = id;
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    message.to_vec().unwrap()
}

fn ask_udp(proxy: SocketAddr, name: &str) -> Observation {
    let socket = UdpSocket::bind((CLIENT, 0)).unwrap();
    socket.connect(proxy).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    socket.send(&query(name, 0x1d01)).unwrap();
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).unwrap();
    observe(&buf[..n]).unwrap()
}

fn ask_tcp(proxy: SocketAddr, name: &str) -> Observation {
    // Loopback's source address is 127.0.0.1: the client.
    let mut stream = TcpStream::connect_timeout(&proxy, Duration::from_secs(5)).unwrap();
    assert_eq!(stream.local_addr().unwrap().ip(), IpAddr::V4(CLIENT));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write_frame(&mut stream, &query(name, 0x1d02)).unwrap();
    observe(&read_frame(&mut stream).unwrap().unwrap()).unwrap()
}

/// A node, an upstream server answering with TTL `ttl` and counting the questions, and the
/// proxy between them; their threads stop when the rig is dropped.
struct Rig {
    stop: Arc<AtomicBool>,
    node: SharedNode<ReferenceDatapath>,
    up: Upstream,
    proxy: DnsProxy<ReferenceDatapath>,
}

impl Rig {
    fn new(ttl: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let node = node();
        let up = upstream(ttl, &stop);
        let proxy = DnsProxy::new(node.clone(), up.addr);
        Self {
            stop,
            node,
            up,
            proxy,
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn log_has(node: &SharedNode<ReferenceDatapath>, log: &Mutex<Vec<String>>, needle: &str) -> bool {
    let mut seen = log.lock().unwrap();
    seen.extend(lock(node).take_log().into_iter().map(|(_, l)| l));
    seen.iter().any(|l| l.contains(needle))
}

#[test]
fn an_allowed_answer_is_released_once_the_datapath_holds_it_and_a_refused_name_never_goes_upstream()
{
    let rig = Rig::new(30);
    let proxy = rig.proxy.clone().with_client_names(|ip| {
        if ip == IpAddr::V4(CLIENT) {
            "default/client".into()
        } else {
            ip.to_string()
        }
    });
    let at = serve(&proxy, &rig.stop);
    let log = Mutex::default();

    assert!(!holds(&rig.node, APP));
    let o = ask_udp(at, "app.demo.test");
    assert_eq!(o.rcode_name(), "NOERROR");
    assert_eq!(o.addresses, [IpAddr::V4(APP)]);
    // Programmed before the answer was released.
    assert!(holds(&rig.node, APP));
    assert_eq!(rig.up.asked.load(Ordering::SeqCst), 1);
    assert!(log_has(
        &rig.node,
        &log,
        "default/client asks app.demo.test. A over UDP: allowed by rules.dns (matchPattern *.demo.test.), forwarded to"
    ));
    assert!(log_has(&rig.node, &log, "programmed in"));

    let o = ask_tcp(at, "app.demo.test");
    assert_eq!(o.addresses, [IpAddr::V4(APP)]);
    assert_eq!(rig.up.asked.load(Ordering::SeqCst), 2);
    assert!(log_has(&rig.node, &log, "over TCP: allowed by rules.dns"));
    assert!(log_has(
        &rig.node,
        &log,
        "no map change needed, answer released"
    ));

    let o = ask_udp(at, "evil.example.org");
    assert_eq!(o.rcode_name(), "REFUSED");
    assert!(o.addresses.is_empty());
    assert_eq!(
        rig.up.asked.load(Ordering::SeqCst),
        2,
        "the upstream was asked"
    );
    assert!(log_has(
        &rig.node,
        &log,
        "answered REFUSED at once, upstream not asked"
    ));
}

#[test]
fn a_query_from_an_unknown_client_is_dropped() {
    let rig = Rig::new(30);
    let stranger = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 9), 5353));
    assert_eq!(
        rig.proxy.handle(
            PROTO_TCP,
            stranger,
            IpAddr::V4(PROXY),
            &query("app.demo.test", 7)
        ),
        None
    );
    assert_eq!(rig.up.asked.load(Ordering::SeqCst), 0);
    let log = lock(&rig.node).take_log();
    assert!(
        log[0].1.contains("no policy lets it here, dropped"),
        "{log:?}"
    );
}

#[test]
fn the_gc_loop_takes_an_expired_address_out_of_the_datapath() {
    // TTL 0: expired as soon as it is learned.
    let rig = Rig::new(0);
    let at = serve(&rig.proxy, &rig.stop);
    ask_udp(at, "app.demo.test");
    assert!(holds(&rig.node, APP));

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut passes = Vec::new();
    let left = GcLoop::new(Duration::from_millis(10))
        .run(&rig.node, |node, pass| {
            passes.push(matches!(pass, GcPass::Dns(_)));
            let held = node
                .datapath()
                .ipcache_entries()
                .iter()
                .any(|(p, _)| p.addr == IpAddr::V4(APP));
            if !held {
                ControlFlow::Break(true)
            } else if Instant::now() > deadline {
                ControlFlow::Break(false)
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert!(left, "the address is still in the ipcache");
    // DNS GC first, then the two in turn.
    assert!(passes[0]);
    assert!(passes.windows(2).all(|w| w[0] != w[1]));
    let log: Vec<String> = lock(&rig.node)
        .take_log()
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    assert!(
        log.iter().any(|l| l.contains("expired and left the cache")),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("ipcache delete 198.51.100.10/32")),
        "{log:?}"
    );
}
