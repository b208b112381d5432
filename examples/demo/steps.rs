//! The demo's steps: what the client does, and what each step must show (the checks that
//! make the demo an integration test).

use std::io::{self, ErrorKind};
use std::net::{IpAddr, Ipv4Addr};
use std::thread;
use std::time::{Duration, Instant};

use fqdnpath::cache::{EndpointId, Observation};
use fqdnpath::datapath::{Datapath, FlowEvent, PROTO_TCP, PROTO_UDP, Verdict};
use fqdnpath::policy::identity::Identity;
use fqdnpath::policy::policymap::{DropReason, Protocol};

use super::hubble::now;
use super::lab::Lab;
use super::proxy::{lock, program};
use super::{
    APP_IP, APP_NAME, CONNECT_TIMEOUT, Checks, GC_DEADLINE, GC_EVERY, OTHER_IP, PROXY_IP,
    REFUSED_NAME, SERVICE_PORT,
};

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

fn resolve_over_udp(lab: &mut Lab) -> Checks {
    let mut checks = Checks::default();
    let answer = lab.query(APP_NAME, PROTO_UDP);
    if let Ok(o) = &answer {
        lab.last_answer = Some((now(), o.ttl));
    }
    let events = lab.settle();
    check_answer(&mut checks, &answer, "NOERROR", &[APP_IP]);
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
    let answer = lab.query(APP_NAME, PROTO_TCP);
    if let Ok(o) = &answer {
        lab.last_answer = Some((now(), o.ttl));
    }
    let events = lab.settle();
    check_answer(&mut checks, &answer, "NOERROR", &[APP_IP]);
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
    let mut checks = Checks::default();
    let result = lab.connect(OTHER_IP);
    let events = lab.settle();
    checks.check(
        result
            .as_ref()
            .is_err_and(|e| e.kind() == ErrorKind::TimedOut),
        format!("the connection timed out: {}", outcome(&result)),
    );
    checks.check(
        dropped_as_world(&events, OTHER_IP),
        format!("its SYN was DROPPED (POLICY_DENIED), {OTHER_IP} being world (ID 2)"),
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

/// One DNS GC pass: expired pairs become zombies, dead zombies leave, and the map changes
/// go into the kernel.
fn dns_gc_pass(lab: &Lab, watch: &mut GcWatch) -> Result<(), String> {
    let mut node = lock(&lab.node);
    let (reports, deltas) = node.agent.dns_gc(now()).map_err(|e| e.to_string())?;
    for report in &reports {
        for removed in &report.cache.removed {
            watch.became_zombie |= removed.ip == IpAddr::V4(APP_IP);
            node.note(format!(
                "DNS GC: {} {} expired and left the cache; it is a zombie now, keeping its \
                 identity while a connection may use it",
                removed.name, removed.ip
            ));
        }
        for zombie in &report.zombies.dead {
            node.note(format!(
                "DNS GC: zombie {} is dead (the last conntrack GC saw no flow to it, two \
                 passes since it became a zombie)",
                zombie.ip
            ));
        }
    }
    if !deltas.is_empty() {
        let (what, took) = program(&mut node, &deltas)?;
        node.note(format!(
            "DNS GC: {what}; programmed in {} us",
            took.as_micros()
        ));
    }
    Ok(())
}

/// One conntrack GC pass: the kernel's expired flows go, and the agent learns which
/// destinations still carry connections (their zombies stay alive).
fn ct_gc_pass(lab: &Lab, watch: &mut GcWatch) {
    let app = IpAddr::V4(APP_IP);
    let mut node = lock(&lab.node);
    let start = now();
    let live: Vec<(EndpointId, IpAddr)> = node
        .dp
        .conntrack_gc(start)
        .into_iter()
        .map(|(e, ip)| (EndpointId(e), ip))
        .collect();
    node.agent.ct_gc(start, &live);
    watch.tracked = live.iter().any(|(_, ip)| *ip == app);
    if watch.tracked && watch.said == Said::Nothing {
        watch.said = Said::Tracked;
        let left_ms = node
            .dp
            .conntrack_entries()
            .iter()
            .filter(|(k, _)| k.dst() == app)
            .map(|(_, v)| v.expires_ns.saturating_sub(start.as_nanos()) / 1_000_000)
            .max()
            .unwrap_or(0);
        node.note(format!(
            "CT GC: conntrack still tracks the connection of step 2 to {APP_IP} (closed; \
             Cilium keeps a closed TCP flow 10 s, {left_ms} ms left): the zombie is marked alive"
        ));
    } else if !watch.tracked && watch.said == Said::Tracked {
        watch.said = Said::Gone;
        node.note(format!("CT GC: no flow to {APP_IP} is tracked any more"));
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
    let mut left_while_tracked = false;
    let mut left = false;
    loop {
        if let Err(e) = dns_gc_pass(lab, &mut watch) {
            checks.check(false, format!("the DNS GC failed: {e}"));
            return checks;
        }
        if lab.ipcache_identity(APP_IP).is_none() {
            left = true;
            left_while_tracked = watch.tracked;
            break;
        }
        if Instant::now() > deadline {
            break;
        }
        thread::sleep(GC_EVERY);
        ct_gc_pass(lab, &mut watch);
    }
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
    let mut checks = Checks::default();
    let result = lab.connect(APP_IP);
    let events = lab.settle();
    checks.check(
        result
            .as_ref()
            .is_err_and(|e| e.kind() == ErrorKind::TimedOut),
        format!("the connection timed out: {}", outcome(&result)),
    );
    checks.check(
        dropped_as_world(&events, APP_IP),
        format!("its SYN was DROPPED (POLICY_DENIED), {APP_IP} being world (ID 2) again"),
    );
    checks
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
