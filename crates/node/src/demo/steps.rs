//! The demo's steps: what the client does, and what each step must show (the checks that
//! make the demo an integration test).

use std::io::{self, ErrorKind};
use std::net::{IpAddr, Ipv4Addr};
use std::ops::ControlFlow;
use std::thread;
use std::time::{Duration, Instant};

use fqdnpath_cache::Observation;
use fqdnpath_datapath::{FlowEvent, PROTO_TCP, PROTO_UDP, Verdict};
use fqdnpath_policy::identity::Identity;
use fqdnpath_policy::policymap::{DropReason, Protocol};

use super::lab::{Lab, ipcache_identity};
use super::{
    APP_IP, APP_NAME, CONNECT_TIMEOUT, Checks, GC_DEADLINE, GC_EVERY, OTHER_IP, PROXY_IP,
    REFUSED_NAME, SERVICE_PORT,
};
use crate::clock::now;
use crate::gc::{CtGcPass, DnsGcPass, GcLoop, GcPass};
use crate::node::Node;

/// One step: it acts, then checks what happened.
pub(super) type Step = fn(&mut Lab) -> Checks;

/// The steps, in order, with their titles.
pub(super) const STEPS: [(&str, Step); 7] = [
    (
        "Resolve app.demo.test over UDP through the node's DNS proxy",
        resolve_over_udp,
    ),
    (
        "Connect to the answer, 198.51.100.10:8080 over TCP",
        connect_to_answer,
    ),
    ("Resolve app.demo.test again, over TCP", resolve_over_tcp),
    (
        "Connect to 198.51.100.11:8080, an address no answer named",
        connect_unresolved,
    ),
    (
        "Resolve evil.example.org, a name rules.dns does not allow",
        resolve_refused,
    ),
    (
        "Let the 3 s TTL run out and run the DNS and conntrack GC",
        expire_and_gc,
    ),
    (
        "Connect to 198.51.100.10:8080 again (a new flow)",
        connect_after_gc,
    ),
];

/// Resolves app.demo.test over `proto`, keeps when the answer came and its TTL (for step 6)
/// and checks it; the flow events meanwhile.
fn resolve_app(lab: &mut Lab, checks: &mut Checks, proto: Protocol) -> Vec<FlowEvent> {
    let answer = lab.query(APP_NAME, proto);
    if let Ok(o) = &answer {
        lab.last_answer = Some((now(), o.ttl));
    }
    let events = lab.settle();
    check_answer(checks, &answer, "NOERROR", &[APP_IP]);
    events
}

fn resolve_over_udp(lab: &mut Lab) -> Checks {
    let mut checks = Checks::default();
    let events = resolve_app(lab, &mut checks, PROTO_UDP);
    checks.check(
        events.iter().any(|e| is_dns_redirect(e, PROTO_UDP)),
        "the query was REDIRECTED to the proxy by the eBPF program",
    );
    let identity = lab.ipcache_identity(APP_IP);
    checks.check(
        identity.is_some_and(Identity::is_local),
        format!(
            "the kernel ipcache holds {APP_IP}/32 with an FQDN identity ({})",
            identity.map_or_else(|| "none".to_owned(), |i| i.to_string())
        ),
    );
    checks
}

fn connect_to_answer(lab: &mut Lab) -> Checks {
    let mut checks = Checks::default();
    let result = lab.connect(APP_IP);
    let events = lab.settle();
    let expected = format!("hello from {APP_IP}:{SERVICE_PORT}");
    checks.check(
        result.as_ref().is_ok_and(|g| *g == expected),
        format!("the connection was made: {}", outcome(&result)),
    );
    checks.check(
        events.iter().any(|e| {
            is_to(e, APP_IP, PROTO_TCP)
                && e.verdict == Verdict::Forwarded
                && e.packet.flags.syn
                && e.dst_identity.is_local()
        }),
        "its SYN was FORWARDED to the FQDN identity",
    );
    checks
}

fn resolve_over_tcp(lab: &mut Lab) -> Checks {
    let mut checks = Checks::default();
    let asked_before = lab.asked(APP_NAME);
    let events = resolve_app(lab, &mut checks, PROTO_TCP);
    checks.check(
        events.iter().any(|e| is_dns_redirect(e, PROTO_TCP)),
        "the TCP query was REDIRECTED to the proxy",
    );
    checks.check(
        lab.asked(APP_NAME) == asked_before + 1,
        "the proxy forwarded it to the authoritative server over TCP",
    );
    checks
}

fn connect_unresolved(lab: &mut Lab) -> Checks {
    connect_to_world(lab, OTHER_IP, "")
}

/// Connects to `addr`:8080, which must be `world` to the datapath: the connection times out,
/// its SYN dropped. `again` ends the second check's line.
fn connect_to_world(lab: &mut Lab, addr: Ipv4Addr, again: &str) -> Checks {
    let mut checks = Checks::default();
    let result = lab.connect(addr);
    let events = lab.settle();
    checks.check(
        result
            .as_ref()
            .is_err_and(|e| e.kind() == ErrorKind::TimedOut),
        format!("the connection timed out: {}", outcome(&result)),
    );
    checks.check(
        dropped_as_world(&events, addr),
        format!("its SYN was DROPPED (POLICY_DENIED), {addr} being world (ID 2){again}"),
    );
    checks
}

fn resolve_refused(lab: &mut Lab) -> Checks {
    let mut checks = Checks::default();
    let answer = lab.query(REFUSED_NAME, PROTO_UDP);
    let events = lab.settle();
    check_answer(&mut checks, &answer, "REFUSED", &[]);
    checks.check(
        events.iter().any(|e| is_dns_redirect(e, PROTO_UDP)),
        "the query was REDIRECTED to the proxy",
    );
    checks.check(
        lab.asked(REFUSED_NAME) == 0,
        "the authoritative server was never asked",
    );
    checks
}

/// What the GC passes of step 6 have shown so far.
#[derive(Default)]
struct GcWatch {
    /// The DNS GC moved app.demo.test's pair out of the cache (into the zombies).
    became_zombie: bool,
    /// The last conntrack GC found a flow to app.demo.test's address.
    tracked: bool,
    /// What the log has said about that flow.
    said: Said,
}

/// What the log has said about the flow of step 2.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum Said {
    #[default]
    Nothing,
    Tracked,
    Gone,
}

impl GcWatch {
    /// After a DNS GC pass: whether app.demo.test's pair left the cache.
    fn dns(&mut self, pass: &DnsGcPass) {
        let app = IpAddr::V4(APP_IP);
        self.became_zombie |= pass
            .reports
            .iter()
            .any(|report| report.cache.removed.iter().any(|r| r.ip == app));
    }

    /// After a conntrack GC pass: whether the flow of step 2 is still tracked, said once
    /// when first seen and once when gone.
    fn conntrack(&mut self, node: &mut Node, pass: &CtGcPass) {
        let app = IpAddr::V4(APP_IP);
        self.tracked = pass.live.iter().any(|(_, ip)| *ip == app);
        if self.tracked && self.said == Said::Nothing {
            self.said = Said::Tracked;
            let left_ms = node
                .datapath()
                .conntrack_entries()
                .iter()
                .filter(|(k, _)| k.dst() == app)
                .map(|(_, v)| v.expires_ns.saturating_sub(pass.at.as_nanos()) / 1_000_000)
                .max()
                .unwrap_or(0);
            node.note(format!(
                "CT GC: conntrack still tracks the connection of step 2 to {APP_IP} (closed; \
                 Cilium keeps a closed TCP flow 10 s, {left_ms} ms left): the zombie is marked \
                 alive"
            ));
        } else if !self.tracked && self.said == Said::Tracked {
            self.said = Said::Gone;
            node.note(format!("CT GC: no flow to {APP_IP} is tracked any more"));
        }
    }
}

fn expire_and_gc(lab: &mut Lab) -> Checks {
    let mut checks = Checks::default();
    let Some((answered, ttl)) = lab.last_answer else {
        checks.check(false, "app.demo.test was never resolved");
        return checks;
    };
    // The cache entry expires `ttl` after the proxy saw the answer, a little before the
    // client got it, and is expired strictly after that instant.
    let expired = answered + Duration::from_secs(u64::from(ttl)) + Duration::from_millis(50);
    thread::sleep(expired.saturating_duration_since(now()));
    lab.note(format!(
        "the TTL ({ttl} s) of {APP_NAME} {APP_IP} has run out; the DNS GC and the conntrack GC \
         now run every {} ms",
        GC_EVERY.as_millis()
    ));
    let deadline = Instant::now() + GC_DEADLINE;
    let mut watch = GcWatch::default();
    // Breaks with `Some(tracked)` when the address left the ipcache (`tracked`: while
    // conntrack still tracked a flow to it), `None` at the deadline.
    let outcome = GcLoop::new(GC_EVERY).run(&lab.node, |node, pass| {
        match pass {
            GcPass::Dns(dns) => {
                watch.dns(dns);
                if ipcache_identity(node.datapath(), APP_IP).is_none() {
                    return ControlFlow::Break(Some(watch.tracked));
                }
                if Instant::now() > deadline {
                    return ControlFlow::Break(None);
                }
            }
            GcPass::Conntrack(ct) => watch.conntrack(node, ct),
        }
        ControlFlow::Continue(())
    });
    let (left, left_while_tracked) = match outcome {
        Ok(Some(tracked)) => (true, tracked),
        Ok(None) => (false, false),
        Err(e) => {
            checks.check(false, format!("the DNS GC failed: {e}"));
            return checks;
        }
    };
    let events = lab.settle();
    checks.check(
        watch.became_zombie,
        format!("after the TTL the DNS GC moved {APP_NAME} {APP_IP} out of the cache"),
    );
    checks.check(
        !left_while_tracked,
        "the address kept its identity while conntrack tracked a connection to it",
    );
    checks.check(
        left,
        format!("{APP_IP} left the kernel ipcache within {GC_DEADLINE:?}"),
    );
    checks.check(events.is_empty(), "no packet was sent meanwhile");
    checks
}

fn connect_after_gc(lab: &mut Lab) -> Checks {
    connect_to_world(lab, APP_IP, " again")
}

fn check_answer(
    checks: &mut Checks,
    answer: &Result<Observation, String>,
    rcode: &str,
    ips: &[Ipv4Addr],
) {
    match answer {
        Ok(o) => {
            let want: Vec<IpAddr> = ips.iter().copied().map(IpAddr::V4).collect();
            checks.check(
                o.rcode_name() == rcode && o.addresses == want,
                format!(
                    "the client got {} {:?} (expected {rcode} {want:?})",
                    o.rcode_name(),
                    o.addresses
                ),
            );
        }
        Err(e) => checks.check(false, format!("the query failed: {e}")),
    }
}

/// What a connection attempt gave, in words.
fn outcome(result: &io::Result<String>) -> String {
    match result {
        Ok(greeting) => format!("connected, the server said {greeting:?}"),
        Err(e) if e.kind() == ErrorKind::TimedOut => {
            format!("no answer to the SYN in {} s", CONNECT_TIMEOUT.as_secs())
        }
        Err(e) => e.to_string(),
    }
}

/// An egress packet from the pod to `addr`:8080 over `proto`.
fn is_to(event: &FlowEvent, addr: Ipv4Addr, proto: Protocol) -> bool {
    event.egress
        && event.packet.dst == IpAddr::V4(addr)
        && event.packet.proto == proto
        && event.packet.dport == SERVICE_PORT
}

/// A query from the pod to the proxy over `proto`, redirected.
fn is_dns_redirect(event: &FlowEvent, proto: Protocol) -> bool {
    event.egress
        && event.packet.dst == IpAddr::V4(PROXY_IP)
        && event.packet.dport == 53
        && event.packet.proto == proto
        && event.verdict == Verdict::Redirected
}

/// There was an egress packet to `addr`:8080, and each was dropped for want of a policy
/// entry, with the destination as `world`.
fn dropped_as_world(events: &[FlowEvent], addr: Ipv4Addr) -> bool {
    let to: Vec<&FlowEvent> = events
        .iter()
        .filter(|e| is_to(e, addr, PROTO_TCP))
        .collect();
    !to.is_empty()
        && to.iter().all(|e| {
            e.verdict == Verdict::Dropped
                && e.drop_reason == Some(DropReason::PolicyDenied)
                && e.dst_identity == Identity::WORLD
        })
}
