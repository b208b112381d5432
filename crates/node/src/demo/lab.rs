//! The lab: the three namespaces and their links, the datapath attached to the pod's
//! interface, the world's servers, the node's proxy, and the client's two actions (ask a
//! name, open a connection). Dropping it stops the threads, detaches the programs and
//! removes the namespaces, in that order.

use std::io::{self, ErrorKind, Read as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use fqdnpath_agent::Agent;
use fqdnpath_cache::{Observation, Timestamp, observe};
use fqdnpath_datapath::{Datapath, FlowEvent, MapSizes, PROTO_TCP};
use fqdnpath_hubble::{Flow, compact};
use fqdnpath_kernel::netns::{Namespace, NetNs, VethEnd, veth_pair};
use fqdnpath_kernel::{Clock, KernelDatapath};
use fqdnpath_policy::identity::Identity;
use fqdnpath_policy::policymap::Protocol;
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};

use super::hubble::{self, Names, WallClock};
use super::world::{self, Questions};
use super::{
    APP_IP, CLIENT_ENDPOINT, CLIENT_POD, CONNECT_TIMEOUT, DNS_SERVER_IP, DNS_TIMEOUT, DemoError,
    MAKING_NAMESPACES, NODE_LOCAL_DNS_POD, NODE_POD_SIDE, NODE_WORLD_SIDE, NS_PREFIX, OTHER_IP,
    POD_IP, POD_NET, PROXY_IP, SERVICE_PORT, SETTLE,
};
use crate::clock::now;
use crate::node::{Node, SharedNode, lock};
use crate::proxy::DnsProxy;
use crate::transport::{read_frame, write_frame};

/// Everything the demo runs on.
pub(super) struct Lab {
    /// The node's agent and datapath, shared with the proxy's threads.
    pub(super) node: SharedNode,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// What the authoritative server was asked.
    questions: Questions,
    names: Names,
    clock: WallClock,
    /// The DNS answers the client got, as Hubble flows, not printed yet: (when, flow).
    answers: Vec<(Timestamp, Flow)>,
    /// Flow events read but not printed yet.
    events: Vec<FlowEvent>,
    next_id: u16,
    /// When the client got app.demo.test's last answer, and its TTL.
    pub(super) last_answer: Option<(Timestamp, u32)>,
    // The namespaces drop last, after `Drop::drop` stopped everything in them.
    client: Namespace,
    node_ns: Namespace,
    world: Namespace,
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        if let Err(e) = lock(&self.node).datapath_mut().detach() {
            eprintln!("kernel_demo: detaching the eBPF programs: {e}");
        }
    }
}

/// Writes `value` into `/proc/sys/<key>` of the namespace `ns` (`/proc/sys/net` shows the
/// namespace of the thread that opens it).
fn sysctl(ns: &Namespace, key: &'static str, value: &str) -> Result<(), DemoError> {
    let _inside = ns.enter()?;
    std::fs::write(format!("/proc/sys/{key}"), value).map_err(|source| DemoError::Sysctl {
        key,
        namespace: ns.name().to_owned(),
        source,
    })
}

fn veth(iface: &str, addr: Ipv4Addr, mac: &str) -> VethEnd {
    VethEnd {
        iface: iface.into(),
        cidr: format!("{addr}/24"),
        mac: mac.into(),
    }
}

fn spawn(
    name: &'static str,
    f: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>, DemoError> {
    thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|source| DemoError::Thread { name, source })
}

/// The three namespaces, linked and routed: pod - node - world, with fixed MACs and
/// permanent neighbour entries (no ARP), no IPv6, and forwarding on the node.
fn network() -> Result<(Namespace, Namespace, Namespace), DemoError> {
    let making = MAKING_NAMESPACES
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let client = Namespace::new(&format!("{NS_PREFIX}client"))?;
    let node = Namespace::new(&format!("{NS_PREFIX}node"))?;
    let world = Namespace::new(&format!("{NS_PREFIX}world"))?;
    drop(making);
    for ns in [&client, &node, &world] {
        // Nothing but the demo's own traffic crosses the links.
        for key in [
            "net/ipv6/conf/all/disable_ipv6",
            "net/ipv6/conf/default/disable_ipv6",
        ] {
            match sysctl(ns, key, "1") {
                Err(DemoError::Sysctl { source, .. }) if source.kind() == ErrorKind::NotFound => {}
                other => other?,
            }
        }
    }
    sysctl(&node, "net/ipv4/ip_forward", "1")?;
    let c0 = veth("c0", POD_IP, "02:fd:0d:00:00:01");
    let n0 = veth("n0", NODE_POD_SIDE, "02:fd:0d:00:00:02");
    let n1 = veth("n1", NODE_WORLD_SIDE, "02:fd:0d:00:00:03");
    let w0 = veth("w0", DNS_SERVER_IP, "02:fd:0d:00:00:04");
    veth_pair((&client, &c0), (&node, &n0))?;
    veth_pair((&node, &n1), (&world, &w0))?;
    client.ip(&["route", "add", "default", "via", n0.addr(), "dev", "c0"])?;
    node.ip(&["addr", "add", &format!("{PROXY_IP}/32"), "dev", "lo"])?;
    for service in [APP_IP, OTHER_IP] {
        world.ip(&["addr", "add", &format!("{service}/32"), "dev", "w0"])?;
        let service = service.to_string();
        node.ip(&[
            "neigh",
            "replace",
            &service,
            "lladdr",
            &w0.mac,
            "dev",
            "n1",
            "nud",
            "permanent",
        ])?;
    }
    world.ip(&["route", "add", POD_NET, "via", n1.addr(), "dev", "w0"])?;
    Ok((client, node, world))
}

/// The sockets of the world's servers and of the proxy, bound inside their namespaces.
struct Sockets {
    dns_udp: UdpSocket,
    dns_tcp: TcpListener,
    services: Vec<TcpListener>,
    proxy_udp: UdpSocket,
    proxy_tcp: TcpListener,
}

fn bind_udp(addr: SocketAddr) -> Result<UdpSocket, DemoError> {
    UdpSocket::bind(addr).map_err(|source| DemoError::BindUdp { addr, source })
}

fn bind_tcp(addr: SocketAddr) -> Result<TcpListener, DemoError> {
    TcpListener::bind(addr).map_err(|source| DemoError::ListenTcp { addr, source })
}

fn sockets(node: &Namespace, world: &Namespace) -> Result<Sockets, DemoError> {
    let dns = SocketAddr::from((DNS_SERVER_IP, 53));
    let proxy = SocketAddr::from((PROXY_IP, 53));
    let (dns_udp, dns_tcp, services) = {
        let _inside = world.enter()?;
        let services = [APP_IP, OTHER_IP]
            .into_iter()
            .map(|a| bind_tcp(SocketAddr::from((a, SERVICE_PORT))))
            .collect::<Result<Vec<_>, _>>()?;
        (bind_udp(dns)?, bind_tcp(dns)?, services)
    };
    let _inside = node.enter()?;
    Ok(Sockets {
        dns_udp,
        dns_tcp,
        services,
        proxy_udp: bind_udp(proxy)?,
        proxy_tcp: bind_tcp(proxy)?,
    })
}

impl Lab {
    /// Makes the namespaces and links, loads and attaches the datapath, starts the servers
    /// and the proxy. On an error, whatever was made is removed.
    pub(super) fn build(agent: Agent) -> Result<Self, DemoError> {
        let (client, node_ns, world) = network()?;
        let mut dp = KernelDatapath::load(MapSizes::default(), Clock::Kernel)?;
        dp.program(agent.compiler(), &|id| id == CLIENT_ENDPOINT)
            .map_err(DemoError::Datapath)?;
        dp.attach("c0", Some(client.name()))?;
        let sockets = sockets(&node_ns, &world)?;
        let mut names = Names::default();
        names.add(IpAddr::V4(POD_IP), CLIENT_POD);
        names.add(IpAddr::V4(PROXY_IP), NODE_LOCAL_DNS_POD);
        let mut lab = Self {
            node: Node::new(agent, dp).shared(),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
            questions: Questions::default(),
            names,
            clock: WallClock::new(),
            answers: Vec::new(),
            events: Vec::new(),
            next_id: 0x1d00,
            last_answer: None,
            client,
            node_ns,
            world,
        };
        // From here on, dropping the lab stops whatever was started.
        lab.start(sockets)?;
        Ok(lab)
    }

    /// Starts the world's servers and the node's proxy, one thread per socket.
    fn start(&mut self, sockets: Sockets) -> Result<(), DemoError> {
        let Sockets {
            dns_udp,
            dns_tcp,
            services,
            proxy_udp,
            proxy_tcp,
        } = sockets;
        // The world's sockets were made inside it; their threads need not enter it.
        let (stop, questions) = (self.stop.clone(), self.questions.clone());
        self.threads.push(spawn("world-dns-udp", move || {
            world::serve_dns_udp(&dns_udp, &questions, &stop);
        })?);
        let (stop, questions) = (self.stop.clone(), self.questions.clone());
        self.threads.push(spawn("world-dns-tcp", move || {
            world::serve_dns_tcp(&dns_tcp, &questions, &stop);
        })?);
        for listener in services {
            let stop = self.stop.clone();
            self.threads.push(spawn("world-service", move || {
                world::serve_greeting(&listener, &stop);
            })?);
        }
        // The proxy's threads make their upstream sockets in the node's namespace.
        let names = self.names.clone();
        let proxy = DnsProxy::new(self.node.clone(), SocketAddr::from((DNS_SERVER_IP, 53)))
            .with_client_names(move |ip| names.describe(ip));
        let (stop, up, ns) = (
            self.stop.clone(),
            proxy.clone(),
            self.node_ns.name().to_owned(),
        );
        self.threads.push(spawn("node-dns-proxy-udp", move || {
            if let Ok(_inside) = NetNs::enter(&ns) {
                let _ = up.serve_udp(&proxy_udp, &stop);
            }
        })?);
        let (stop, ns) = (self.stop.clone(), self.node_ns.name().to_owned());
        self.threads.push(spawn("node-dns-proxy-tcp", move || {
            if let Ok(_inside) = NetNs::enter(&ns) {
                let _ = proxy.serve_tcp(&proxy_tcp, &stop);
            }
        })?);
        Ok(())
    }

    /// What runs where, for the reader.
    pub(super) fn describe(&self) -> Vec<String> {
        let attached = lock(&self.node)
            .datapath()
            .attachments()
            .iter()
            .map(|a| {
                let how = if a.is_tcx() { "TCX" } else { "clsact" };
                format!("{} ({how} egress and ingress)", a.iface())
            })
            .collect::<Vec<_>>()
            .join(", ");
        vec![
            format!(
                "namespace {}: the pod {CLIENT_POD}, {POD_IP} on c0, nameserver {PROXY_IP}; \
                 the eBPF datapath is attached to {attached}",
                self.client.name()
            ),
            format!(
                "namespace {}: the node, routing between pod and world; the DNS proxy on \
                 {PROXY_IP}:53 (UDP and TCP), where NodeLocal DNSCache listens",
                self.node_ns.name()
            ),
            format!(
                "namespace {}: the world; authoritative DNS for demo.test on {DNS_SERVER_IP}:53 \
                 (UDP and TCP), app.demo.test A {APP_IP} TTL 3 s; TCP services on \
                 {APP_IP}:{SERVICE_PORT} and {OTHER_IP}:{SERVICE_PORT}",
                self.world.name()
            ),
        ]
    }

    /// Waits for the step's last packets, then takes its flow events from the ring buffer.
    pub(super) fn settle(&mut self) -> Vec<FlowEvent> {
        thread::sleep(SETTLE);
        let events = lock(&self.node).datapath_mut().events();
        self.events.extend(events.iter().cloned());
        events
    }

    /// Every line not printed yet (flow events, proxy and GC notes, the client's answers),
    /// in time order.
    pub(super) fn timeline(&mut self) -> Vec<String> {
        let (clock, names) = (self.clock, &self.names);
        let mut lines: Vec<(Timestamp, String)> = self
            .events
            .drain(..)
            .map(|e| {
                let flow = hubble::flow(&e, clock.time(e.time), names);
                (e.time, compact(&flow).to_string())
            })
            .collect();
        for (t, text) in lock(&self.node).take_log() {
            lines.push((t, format!("{} {text}", clock.time(t).stamp_milli())));
        }
        for (t, flow) in self.answers.drain(..) {
            lines.push((t, compact(&flow).to_string()));
        }
        lines.sort_by_key(|(t, _)| *t);
        lines.into_iter().map(|(_, l)| l).collect()
    }

    /// A note on the node's log.
    pub(super) fn note(&self, text: String) {
        lock(&self.node).note(text);
    }

    /// The client asks its nameserver for `name` (type A) over `proto`; the answer, observed.
    pub(super) fn query(&mut self, name: &str, proto: Protocol) -> Result<Observation, String> {
        self.next_id = self.next_id.wrapping_add(1);
        let id = self.next_id;
        let mut message = Message::query();
        message.metadata.id = id;
        message.metadata.recursion_desired = true;
        let qname = Name::from_ascii(name).map_err(|e| e.to_string())?;
        message.add_query(Query::query(qname, RecordType::A));
        let wire = message.to_vec().map_err(|e| e.to_string())?;
        let response = if proto == PROTO_TCP {
            self.exchange_tcp(&wire)
        } else {
            self.exchange_udp(&wire)
        }
        .map_err(|e| format!("asking {PROXY_IP}:53: {e}"))?;
        let answer = observe(&response).map_err(|e| format!("an answer that is not DNS: {e}"))?;
        if answer.id != id {
            return Err(format!("an answer with ID {} to query {id}", answer.id));
        }
        let at = now();
        let flow = hubble::dns_response(
            &answer,
            IpAddr::V4(PROXY_IP),
            IpAddr::V4(POD_IP),
            self.clock.time(at),
            &self.names,
        );
        self.answers.push((at, flow));
        Ok(answer)
    }

    fn exchange_udp(&self, query: &[u8]) -> io::Result<Vec<u8>> {
        let socket = {
            let _inside = self.client.enter().map_err(io::Error::other)?;
            UdpSocket::bind("0.0.0.0:0")?
        };
        socket.connect((PROXY_IP, 53))?;
        socket.set_read_timeout(Some(DNS_TIMEOUT))?;
        socket.send(query)?;
        let mut buf = [0u8; 4096];
        let n = socket.recv(&mut buf)?;
        Ok(buf[..n].to_vec())
    }

    fn exchange_tcp(&self, query: &[u8]) -> io::Result<Vec<u8>> {
        let mut stream = {
            let _inside = self.client.enter().map_err(io::Error::other)?;
            TcpStream::connect_timeout(&SocketAddr::from((PROXY_IP, 53)), DNS_TIMEOUT)?
        };
        stream.set_read_timeout(Some(DNS_TIMEOUT))?;
        write_frame(&mut stream, query).map_err(io::Error::other)?;
        read_frame(&mut stream)?.ok_or_else(|| {
            io::Error::new(
                ErrorKind::UnexpectedEof,
                "the connection closed without an answer",
            )
        })
    }

    /// The client opens a TCP connection to `addr`:8080, reads the greeting and closes.
    pub(super) fn connect(&self, addr: Ipv4Addr) -> io::Result<String> {
        let to = SocketAddr::from((addr, SERVICE_PORT));
        let mut stream = {
            let _inside = self.client.enter().map_err(io::Error::other)?;
            TcpStream::connect_timeout(&to, CONNECT_TIMEOUT)?
        };
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut greeting = String::new();
        stream.read_to_string(&mut greeting)?;
        Ok(greeting.trim_end().to_owned())
    }

    /// The identity the kernel's ipcache gives `addr` as a /32, if it holds one.
    pub(super) fn ipcache_identity(&self, addr: Ipv4Addr) -> Option<Identity> {
        ipcache_identity(lock(&self.node).datapath(), addr)
    }

    /// How many times the authoritative server was asked for `name`.
    pub(super) fn asked(&self, name: &str) -> usize {
        let prefix = format!("{name} ");
        self.questions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|q| q.starts_with(&prefix))
            .count()
    }
}

/// The identity `dp`'s ipcache gives `addr` as a /32, if it holds one.
pub(super) fn ipcache_identity(dp: &KernelDatapath, addr: Ipv4Addr) -> Option<Identity> {
    dp.ipcache_entries()
        .into_iter()
        .find(|(p, _)| p.addr == IpAddr::V4(addr) && p.len == 32)
        .map(|(_, id)| id)
}
