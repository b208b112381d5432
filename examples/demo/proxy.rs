//! The node's DNS proxy, listening where `NodeLocal DNSCache` listens (169.254.20.10:53, UDP
//! and TCP). The transport is here; every decision is the agent's ([`Agent::on_query`],
//! [`Agent::on_response`]), as in the simulator: one proxy logic, two transports.
//!
//! A query that the eBPF program redirected arrives; the proxy finds the DNS rules of the
//! policy entry that redirected it (the client's endpoint, the proxy's identity, the protocol
//! and port 53), and the agent either refuses it at once or lets it be forwarded upstream over
//! the same protocol. The upstream's answer is observed and learned; its map changes are
//! written into the kernel maps, and only then does the answer go back to the client.

use std::fmt::Write as _;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use fqdnpath::agent::{Agent, QueryDecision, hold, servfail};
use fqdnpath::cache::hickory_proto::op::Message;
use fqdnpath::cache::observe::rcode_name;
use fqdnpath::cache::{EndpointId, Timestamp, observe};
use fqdnpath::datapath::{Datapath, PROTO_TCP, PROTO_UDP};
use fqdnpath::kernel::KernelDatapath;
use fqdnpath::policy::compile::Delta;
use fqdnpath::policy::policymap::{DnsAllow, PolicyVerdict, Protocol};

use super::hubble::{Names, now};
use super::world::{accept_loop, read_frame, write_frame};

/// How long the proxy waits for the upstream server.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// The node: its agent, its kernel datapath, and what happened, for the demo to print.
pub(crate) struct Node {
    /// The agent (DNS cache, compiled maps).
    pub(crate) agent: Agent,
    /// The eBPF datapath attached to the client's interface.
    pub(crate) dp: KernelDatapath,
    /// What the proxy and the GC did: (when, text).
    pub(crate) log: Vec<(Timestamp, String)>,
}

impl Node {
    pub(crate) fn note(&mut self, text: String) {
        self.log.push((now(), text));
    }
}

/// The node, shared by the proxy's threads and the demo.
pub(crate) type SharedNode = Arc<Mutex<Node>>;

/// Locks the node; a thread that panicked while holding it left nothing half-written that
/// matters here.
pub(crate) fn lock(node: &SharedNode) -> MutexGuard<'_, Node> {
    node.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the proxy knows beyond the node: where to forward, how to name pods.
#[derive(Clone, Debug)]
pub(crate) struct Upstream {
    /// The authoritative server.
    pub(crate) server: SocketAddr,
    /// Names for the log.
    pub(crate) names: Names,
}

/// What the policy says about DNS from one client to the proxy.
enum Rule {
    /// Redirected: the agent enforces these DNS rules and learns from the answer.
    Redirect(DnsAllow),
    /// Allowed without DNS rules: the query passes and nothing is learned (Cilium's proxy
    /// never sees it).
    PassThrough,
    /// Not allowed (the eBPF program dropped it already), or not from a known endpoint.
    Denied,
}

fn proto_name(proto: Protocol) -> &'static str {
    if proto == PROTO_TCP { "TCP" } else { "UDP" }
}

fn describe_allow(allow: &DnsAllow) -> String {
    match allow {
        DnsAllow::All => "every name".to_owned(),
        DnsAllow::Selectors(keys) => keys
            .iter()
            .map(|k| {
                let kind = if k.pattern {
                    "matchPattern"
                } else {
                    "matchName"
                };
                format!("{kind} {}", k.value)
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// A policy key's protocol and port, as `TCP/8080`.
fn port_text(proto: Protocol, port: u16, prefix_len: u8) -> String {
    let name = match proto {
        0 => return "any protocol".to_owned(),
        PROTO_TCP => "TCP".to_owned(),
        PROTO_UDP => "UDP".to_owned(),
        other => format!("protocol {other}"),
    };
    match prefix_len {
        0 => format!("{name}/any port"),
        16 => format!("{name}/{port}"),
        len => format!("{name}/{port}/{len}"),
    }
}

/// One map change, for the log.
pub(crate) fn describe_delta(delta: &Delta) -> String {
    match delta {
        Delta::IpcacheUpsert { prefix, identity } => {
            format!("ipcache {prefix} -> identity {identity}")
        }
        Delta::IpcacheDelete { prefix } => format!("ipcache delete {prefix}"),
        Delta::PolicyUpsert { endpoint, key, .. } => format!(
            "policy of endpoint {endpoint}: allow identity {} {}",
            key.identity,
            port_text(key.proto, key.port, key.port_prefix_len)
        ),
        Delta::PolicyDelete { endpoint, key } => format!(
            "policy of endpoint {endpoint}: delete identity {} {}",
            key.identity,
            port_text(key.proto, key.port, key.port_prefix_len)
        ),
    }
}

/// Programs `deltas` into the kernel maps; returns a sentence saying what was done and how
/// long it took, or why it failed.
pub(crate) fn program(node: &mut Node, deltas: &[Delta]) -> Result<(String, Duration), String> {
    let started = Instant::now();
    node.dp.apply(deltas).map_err(|e| e.to_string())?;
    let took = started.elapsed();
    let what: Vec<String> = deltas.iter().map(describe_delta).collect();
    Ok((what.join("; "), took))
}

/// The DNS rules for a query from `client` to `local` over `proto`.
fn dns_rule(node: &Node, client: IpAddr, local: IpAddr, proto: Protocol) -> (Rule, Option<u16>) {
    let compiler = node.agent.compiler();
    let Some(endpoint) = compiler
        .endpoints()
        .find(|(_, ips, _)| ips.contains(&client))
        .map(|(id, ..)| id)
    else {
        return (Rule::Denied, None);
    };
    let rule = match compiler
        .policy_map(endpoint)
        .map(|m| m.lookup(compiler.identity_of(local), proto, 53))
    {
        Some(PolicyVerdict::Redirected { dns, .. }) => Rule::Redirect(dns),
        // Allowed without DNS rules, or no policy selects the endpoint (no default deny): no
        // proxy in Cilium.
        Some(PolicyVerdict::Allowed { .. }) | None => Rule::PassThrough,
        Some(PolicyVerdict::Dropped { .. }) => Rule::Denied,
    };
    (rule, Some(endpoint))
}

/// Handles one query from `client`; the answer to send back, if any.
fn handle(
    node: &SharedNode,
    upstream: &Upstream,
    proto: Protocol,
    client: SocketAddr,
    local: IpAddr,
    query: &[u8],
) -> Option<Vec<u8>> {
    let who = upstream.names.describe(client.ip());
    // The question's type, for the log only (the agent reads the query itself).
    let qtype = Message::from_vec(query)
        .ok()
        .and_then(|m| m.queries.first().map(|q| format!(" {}", q.query_type)))
        .unwrap_or_default();
    let over = proto_name(proto);
    let (rule, endpoint) = dns_rule(&lock(node), client.ip(), local, proto);
    let allow = match rule {
        Rule::Denied => {
            lock(node).note(format!(
                "proxy: query from {client} over {over}: no policy lets it here, dropped"
            ));
            return None;
        }
        Rule::PassThrough => None,
        Rule::Redirect(allow) => Some(allow),
    };
    if let (Some(allow), Some(endpoint)) = (allow, endpoint) {
        let decision = lock(node).agent.on_query(query, &allow);
        match decision {
            Err(e) => {
                lock(node).note(format!("proxy: {who} over {over}: {e}: SERVFAIL"));
                servfail(query).ok()
            }
            Ok(QueryDecision::Reject {
                qname,
                response,
                rcode,
            }) => {
                lock(node).note(format!(
                    "proxy: {who} asks {qname}{qtype} over {over}: rules.dns allows {} only: \
                     answered {} at once, upstream not asked",
                    describe_allow(&allow),
                    rcode_name(rcode)
                ));
                Some(response)
            }
            Ok(QueryDecision::Forward { qname }) => {
                lock(node).note(format!(
                    "proxy: {who} asks {qname}{qtype} over {over}: allowed by rules.dns ({}), \
                     forwarded to {}",
                    describe_allow(&allow),
                    upstream.server
                ));
                let response = match forward(proto, upstream.server, query) {
                    Ok(r) => r,
                    Err(e) => {
                        lock(node).note(format!(
                            "proxy: upstream {} failed ({e}): SERVFAIL",
                            upstream.server
                        ));
                        return servfail(query).ok();
                    }
                };
                Some(learn(&mut lock(node), endpoint, &response, query))
            }
        }
    } else {
        // Allowed without DNS rules: forwarded, nothing learned.
        match forward(proto, upstream.server, query) {
            Ok(response) => {
                lock(node).note(format!(
                    "proxy: {who} over {over}: no rules.dns apply, answer passed on unobserved"
                ));
                Some(response)
            }
            Err(_) => servfail(query).ok(),
        }
    }
}

/// Observes and learns the upstream's `response` for `endpoint`, programs the map changes
/// and releases the answer (SERVFAIL if it cannot be handled).
fn learn(node: &mut Node, endpoint: u16, response: &[u8], query: &[u8]) -> Vec<u8> {
    let observed_at = now();
    let learned = match node
        .agent
        .on_response(EndpointId(endpoint), response, observed_at)
    {
        Ok(learned) => learned,
        Err(e) => {
            node.note(format!("proxy: {e}: SERVFAIL"));
            return servfail(query).unwrap_or_default();
        }
    };
    let o = &learned.observation;
    let ips: Vec<String> = o.addresses.iter().map(ToString::to_string).collect();
    let mut text = format!(
        "proxy: answer {} {} {} [{}]",
        o.qname,
        o.qtype,
        o.rcode_name(),
        ips.join(",")
    );
    if o.ttl != u32::MAX {
        let _ = write!(text, " TTL {} s", o.ttl);
    }
    if learned.deltas.is_empty() {
        text.push_str(": no map change needed, answer released");
        node.note(text);
        return response.to_vec();
    }
    match program(node, &learned.deltas) {
        Ok((what, took)) => {
            let h = hold(
                observed_at,
                now(),
                node.agent.config().proxy_response_max_delay,
            );
            let _ = write!(
                text,
                ": {what}; programmed in {} us, answer released",
                took.as_micros()
            );
            if h.timed_out {
                text.push_str(" (past tofqdns-proxy-response-max-delay: Cilium would not wait)");
            }
            node.note(text);
            response.to_vec()
        }
        Err(e) => {
            let _ = write!(text, ": programming failed ({e}): SERVFAIL");
            node.note(text);
            servfail(query).unwrap_or_default()
        }
    }
}

/// Forwards `query` to `server` over `proto` and returns its answer (same ID).
fn forward(proto: Protocol, server: SocketAddr, query: &[u8]) -> io::Result<Vec<u8>> {
    let id = query.get(..2).map(|b| [b[0], b[1]]);
    if proto == PROTO_TCP {
        let mut stream = TcpStream::connect_timeout(&server, UPSTREAM_TIMEOUT)?;
        stream.set_read_timeout(Some(UPSTREAM_TIMEOUT))?;
        write_frame(&mut stream, query)?;
        return read_frame(&mut stream)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "no answer"));
    }
    let socket = UdpSocket::bind("0.0.0.0:0")?;
    socket.connect(server)?;
    socket.set_read_timeout(Some(UPSTREAM_TIMEOUT))?;
    socket.send(query)?;
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.recv(&mut buf)?;
        // A stray datagram with another ID is not the answer.
        if buf.get(..2).map(|b| [b[0], b[1]]) == id && observe(&buf[..n]).is_ok() {
            return Ok(buf[..n].to_vec());
        }
    }
}

/// Serves the proxy over UDP on `socket` until `stop`.
pub(crate) fn serve_udp(
    socket: &UdpSocket,
    node: &SharedNode,
    upstream: &Upstream,
    stop: &AtomicBool,
) {
    let Ok(local) = socket.local_addr() else {
        return;
    };
    if socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .is_err()
    {
        return;
    }
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        if let Ok((n, client)) = socket.recv_from(&mut buf)
            && let Some(answer) = handle(node, upstream, PROTO_UDP, client, local.ip(), &buf[..n])
        {
            let _ = socket.send_to(&answer, client);
        }
    }
}

/// Serves the proxy over TCP on `listener` until `stop`.
pub(crate) fn serve_tcp(
    listener: &TcpListener,
    node: &SharedNode,
    upstream: &Upstream,
    stop: &AtomicBool,
) {
    accept_loop(listener, stop, |mut stream, client| {
        let Ok(local) = stream.local_addr() else {
            return;
        };
        while let Ok(Some(query)) = read_frame(&mut stream) {
            let Some(answer) = handle(node, upstream, PROTO_TCP, client, local.ip(), &query) else {
                break;
            };
            if write_frame(&mut stream, &answer).is_err() {
                break;
            }
        }
    });
}
