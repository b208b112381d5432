//! The node's DNS proxy, listening on UDP and TCP (in the demo, where `NodeLocal DNSCache`
//! listens: 169.254.20.10:53). The transport is here; every decision is the agent's
//! ([`Agent::on_query`](fqdnpath_agent::Agent::on_query),
//! [`Agent::on_response`](fqdnpath_agent::Agent::on_response)), as in the simulator: one
//! proxy logic, two transports.
//!
//! A query that the datapath redirected arrives; the proxy finds the DNS rules of the policy
//! entry that redirected it (the client's endpoint, the proxy's identity, the protocol and
//! port 53), and the agent either refuses it at once or lets it be forwarded upstream over
//! the same protocol. The upstream's answer is observed and learned; its map changes are
//! written into the datapath, and only then does the answer go back to the client. Whatever
//! cannot be handled is answered SERVFAIL, as Cilium's proxy does. Each query leaves a line
//! in the node's log.

use std::fmt::{self, Write as _};
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fqdnpath_agent::{QueryDecision, hold, servfail};
use fqdnpath_cache::observe::rcode_name;
use fqdnpath_cache::{EndpointId, Timestamp};
use fqdnpath_datapath::{Datapath, PROTO_TCP, PROTO_UDP};
use fqdnpath_kernel::KernelDatapath;
use fqdnpath_policy::policymap::{DnsAllow, PolicyVerdict, Protocol};
use hickory_proto::op::Message;

use crate::clock::now;
use crate::node::{Node, SharedNode, describe_deltas, lock};
use crate::transport::{accept_loop, exchange, read_frame, write_frame};

/// How long the proxy waits for the upstream server, unless told otherwise
/// ([`DnsProxy::with_upstream_timeout`]).
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// How often a listener looks at its stop flag.
const POLL: Duration = Duration::from_millis(50);

/// The largest query over UDP the proxy reads.
const UDP_BUFFER: usize = 4096;

/// Names a client's address for the log.
type ClientNames = Arc<dyn Fn(IpAddr) -> String + Send + Sync>;

/// The DNS proxy of one node: where it forwards, and the node whose agent decides and whose
/// datapath it programs. Cloning it is cheap: each listener thread takes a clone.
pub struct DnsProxy<D = KernelDatapath> {
    node: SharedNode<D>,
    upstream: SocketAddr,
    upstream_timeout: Duration,
    client_names: ClientNames,
}

impl<D> Clone for DnsProxy<D> {
    fn clone(&self) -> Self {
        Self {
            node: self.node.clone(),
            upstream: self.upstream,
            upstream_timeout: self.upstream_timeout,
            client_names: self.client_names.clone(),
        }
    }
}

impl<D> fmt::Debug for DnsProxy<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DnsProxy")
            .field("upstream", &self.upstream)
            .field("upstream_timeout", &self.upstream_timeout)
            .finish_non_exhaustive()
    }
}

/// What the policy says about DNS from one client to the proxy.
enum Rule {
    /// Redirected: the agent enforces these DNS rules and learns from the answer.
    Redirect(DnsAllow),
    /// Allowed without DNS rules: the query passes and nothing is learned (Cilium's proxy
    /// never sees it).
    PassThrough,
    /// Not allowed (the datapath dropped it already), or not from a known endpoint.
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

/// The DNS rules for a query from `client` to `local` over `proto`, and the client's
/// endpoint.
fn dns_rule<D>(
    node: &Node<D>,
    client: IpAddr,
    local: IpAddr,
    proto: Protocol,
) -> (Rule, Option<EndpointId>)
where
    D: Datapath,
{
    let compiler = node.agent().compiler();
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

impl<D: Datapath> DnsProxy<D> {
    /// The proxy of `node`, forwarding allowed queries to `upstream`. Clients are named by
    /// their address in the log until [`with_client_names`](Self::with_client_names).
    pub fn new(node: SharedNode<D>, upstream: SocketAddr) -> Self {
        Self {
            node,
            upstream,
            upstream_timeout: UPSTREAM_TIMEOUT,
            client_names: Arc::new(|ip: IpAddr| ip.to_string()),
        }
    }

    /// Names clients in the log with `names` (a pod's `namespace/name`, say).
    #[must_use]
    pub fn with_client_names(
        mut self,
        names: impl Fn(IpAddr) -> String + Send + Sync + 'static,
    ) -> Self {
        self.client_names = Arc::new(names);
        self
    }

    /// Waits at most `timeout` for each read from the upstream server.
    #[must_use]
    pub fn with_upstream_timeout(mut self, timeout: Duration) -> Self {
        self.upstream_timeout = timeout;
        self
    }

    /// Where allowed queries go.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// The node it serves.
    pub fn node(&self) -> &SharedNode<D> {
        &self.node
    }

    /// Handles one query from `client`, received on the local address `local` over `proto`;
    /// the answer to send back, if any (`None`: no policy lets the client ask here, and the
    /// query is dropped).
    pub fn handle(
        &self,
        proto: Protocol,
        client: SocketAddr,
        local: IpAddr,
        query: &[u8],
    ) -> Option<Vec<u8>> {
        let node = &self.node;
        let upstream = self.upstream;
        let who = (self.client_names)(client.ip());
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
        let (Some(allow), Some(endpoint)) = (allow, endpoint) else {
            // Allowed without DNS rules: forwarded, nothing learned.
            return match exchange(proto, upstream, query, self.upstream_timeout) {
                Ok(response) => {
                    lock(node).note(format!(
                        "proxy: {who} over {over}: no rules.dns apply, answer passed on \
                         unobserved"
                    ));
                    Some(response)
                }
                Err(_) => servfail(query).ok(),
            };
        };
        let decision = lock(node).agent().on_query(query, &allow);
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
                     forwarded to {upstream}",
                    describe_allow(&allow),
                ));
                let response = match exchange(proto, upstream, query, self.upstream_timeout) {
                    Ok(r) => r,
                    Err(e) => {
                        lock(node)
                            .note(format!("proxy: upstream {upstream} failed ({e}): SERVFAIL"));
                        return servfail(query).ok();
                    }
                };
                Some(learn(&mut lock(node), endpoint, &response, query))
            }
        }
    }

    /// Serves the proxy over UDP on `socket` until `stop`, one query at a time.
    pub fn serve_udp(&self, socket: &UdpSocket, stop: &AtomicBool) -> io::Result<()> {
        let local = socket.local_addr()?;
        socket.set_read_timeout(Some(POLL))?;
        let mut buf = [0u8; UDP_BUFFER];
        while !stop.load(Ordering::Relaxed) {
            if let Ok((n, client)) = socket.recv_from(&mut buf)
                && let Some(answer) = self.handle(PROTO_UDP, client, local.ip(), &buf[..n])
            {
                let _ = socket.send_to(&answer, client);
            }
        }
        Ok(())
    }

    /// Serves the proxy over TCP on `listener` until `stop`, one connection at a time, each
    /// for as many queries as its client sends.
    pub fn serve_tcp(&self, listener: &TcpListener, stop: &AtomicBool) -> io::Result<()> {
        accept_loop(listener, stop, |mut stream, client| {
            let Ok(local) = stream.local_addr() else {
                return;
            };
            while let Ok(Some(query)) = read_frame(&mut stream) {
                let Some(answer) = self.handle(PROTO_TCP, client, local.ip(), &query) else {
                    break;
                };
                if write_frame(&mut stream, &answer).is_err() {
                    break;
                }
            }
        })
    }
}

/// Observes and learns the upstream's `response` for `endpoint`, programs the map changes
/// and releases the answer (SERVFAIL if it cannot be handled).
fn learn<D: Datapath>(
    node: &mut Node<D>,
    endpoint: EndpointId,
    response: &[u8],
    query: &[u8],
) -> Vec<u8> {
    let observed_at: Timestamp = now();
    let learned = match node
        .agent_mut()
        .on_response(endpoint, response, observed_at)
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
    match node.program(&learned.deltas) {
        Ok(took) => {
            let h = hold(
                observed_at,
                now(),
                node.agent().config().proxy_response_max_delay,
            );
            let _ = write!(
                text,
                ": {}; programmed in {} us, answer released",
                describe_deltas(&learned.deltas),
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
