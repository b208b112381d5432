//! The in-kernel enforcement demo, as a function that the example
//! (`examples/kernel_demo.rs`) and its end-to-end test (`tests/kernel_demo.rs`) both call.
//!
//! Three network namespaces: the client pod, the node, and the outside world.
//!
//! ```text
//!  client pod            node                                world
//!  10.201.0.10 c0 --- n0 10.201.0.1
//!                        169.254.20.10:53 DNS proxy
//!                        198.51.100.1 n1 ---------------- w0 198.51.100.53:53 DNS for demo.test
//!                                                            198.51.100.10:8080, .11:8080
//! ```
//!
//! The eBPF datapath sits on the pod's interface `c0` (TC egress and ingress). The pod's
//! nameserver is the node's DNS proxy ([`DnsProxy`](crate::DnsProxy)) at 169.254.20.10, where
//! `NodeLocal DNSCache` listens. The proxy enforces the policy's `rules.dns`, forwards allowed
//! queries to the authoritative server, learns from the answers, programs the kernel maps and
//! only then releases each answer. Every packet of the pod is judged in the kernel; the flow
//! events from the ring buffer are printed as Hubble flows, in the simulator's compact form.
//!
//! - `lab`: namespaces, links, datapath, threads; the client's two actions.
//! - `steps`: the seven steps and their checks; step 6 runs the node's [`GcLoop`](crate::GcLoop).
//! - `world`: the authoritative DNS server (hickory-proto) and the TCP services.
//! - `hubble`: the kernel's flow events and the client's DNS answers as
//!   [`fqdnpath_hubble::Flow`]s on the wall clock, printed with [`fqdnpath_hubble::compact()`].

mod hubble;
mod lab;
mod steps;
mod world;

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use fqdnpath_agent::{Agent, AgentConfig, AgentError};
use fqdnpath_datapath::DatapathError;
use fqdnpath_kernel::KernelError;
use fqdnpath_policy::compile::{Endpoint, EndpointId};
use fqdnpath_policy::identity::Identity;
use fqdnpath_policy::{ManifestError, load_file};

use crate::node::lock;
use lab::Lab;

/// Where iproute2 keeps named network namespaces.
const NETNS_DIR: &str = "/var/run/netns";
/// Held while the demo makes its namespaces. A Ctrl-C handler holds it while it removes
/// them ([`remove_namespaces`]), so that none is made behind its back.
pub static MAKING_NAMESPACES: Mutex<()> = Mutex::new(());
/// Every namespace the demo makes is named `fqdnpath-demo-<role>-<pid>-<n>`.
pub const NS_PREFIX: &str = "fqdnpath-demo-";

const POD_IP: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 10);
const POD_NET: &str = "10.201.0.0/24";
const NODE_POD_SIDE: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 1);
const NODE_WORLD_SIDE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const PROXY_IP: Ipv4Addr = Ipv4Addr::new(169, 254, 20, 10);
const DNS_SERVER_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 53);
/// app.demo.test's address.
const APP_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
/// An address no DNS answer ever names.
const OTHER_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 11);
const SERVICE_PORT: u16 = 8080;
const APP_NAME: &str = "app.demo.test.";
const REFUSED_NAME: &str = "evil.example.org.";

/// The client pod's endpoint ID.
pub const CLIENT_ENDPOINT: EndpointId = EndpointId(101);
/// The endpoint ID of `NodeLocal DNSCache`.
pub const NODE_LOCAL_DNS_ENDPOINT: EndpointId = EndpointId(102);
const CLIENT_POD: &str = "default/client";
const NODE_LOCAL_DNS_POD: &str = "kube-system/node-local-dns";

/// A connection the eBPF program drops times out after this (the SYN never gets an answer).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const DNS_TIMEOUT: Duration = Duration::from_secs(2);
/// Time for a step's last packets (FIN, final ACK) to pass before its events are read.
const SETTLE: Duration = Duration::from_millis(150);
/// The demo runs the DNS GC and the conntrack GC every half second (Cilium runs its DNS GC
/// every minute, and its conntrack GC at an interval it adapts to the table's churn).
const GC_EVERY: Duration = Duration::from_millis(500);
/// How long the GC may take to let the expired address go before the step fails.
const GC_DEADLINE: Duration = Duration::from_secs(20);

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// The policy file could not be loaded.
    #[error("loading the policy: {0}")]
    Policy(#[source] ManifestError),
    /// The policy file holds no network policy.
    #[error(
        "{}: no CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy in the file",
        .0.display()
    )]
    NoPolicy(PathBuf),
    /// The agent refused the policy.
    #[error("the agent: {0}")]
    Agent(#[source] AgentError),
    /// The kernel backend or a namespace operation failed.
    #[error(transparent)]
    Kernel(#[from] KernelError),
    /// Programming the maps failed.
    #[error("programming the kernel maps: {0}")]
    Datapath(#[source] DatapathError),
    /// A sysctl could not be set in one of the namespaces.
    #[error("setting {key} in {namespace}: {source}")]
    Sysctl {
        /// The key under `/proc/sys`.
        key: &'static str,
        /// The namespace's name.
        namespace: String,
        /// Why it failed.
        source: io::Error,
    },
    /// A UDP socket could not be bound.
    #[error("binding UDP {addr}: {source}")]
    BindUdp {
        /// Where.
        addr: SocketAddr,
        /// Why it failed.
        source: io::Error,
    },
    /// A TCP listener could not be made.
    #[error("listening on TCP {addr}: {source}")]
    ListenTcp {
        /// Where.
        addr: SocketAddr,
        /// Why it failed.
        source: io::Error,
    },
    /// A thread could not be started.
    #[error("starting thread {name}: {source}")]
    Thread {
        /// The thread's name.
        name: &'static str,
        /// Why it failed.
        source: io::Error,
    },
    /// The output could not be written.
    #[error("writing the output: {0}")]
    Output(#[source] io::Error),
}

/// What each step of the demo showed.
#[derive(Debug, Default)]
pub struct Report {
    /// Per step: its title and its checks (passed?, what).
    pub steps: Vec<(String, Vec<(bool, String)>)>,
}

impl Report {
    /// The failed checks, each with its step.
    pub fn failures(&self) -> Vec<String> {
        self.steps
            .iter()
            .flat_map(|(step, checks)| {
                checks
                    .iter()
                    .filter(|(ok, _)| !ok)
                    .map(move |(_, what)| format!("{step}: {what}"))
            })
            .collect()
    }
}

/// The checks of one step.
#[derive(Default)]
struct Checks(Vec<(bool, String)>);

impl Checks {
    fn check(&mut self, ok: bool, what: impl Into<String>) {
        self.0.push((ok, what.into()));
    }
}

/// Removes the namespaces of process `pid` (after Ctrl-C) as `ip netns del` does: unmounts
/// and unlinks each one's file, with no child process (a terminal's Ctrl-C reaches the whole
/// process group, children included). Returns how many went.
pub fn remove_namespaces(pid: u32) -> usize {
    let mine = format!("-{pid}-");
    let Ok(dir) = std::fs::read_dir(NETNS_DIR) else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|name| name.starts_with(NS_PREFIX) && name.contains(&mine))
        })
        .filter(|e| {
            let path = e.path();
            // Already unmounted by a drop that got this far: the unlink still counts.
            let _ = rustix::mount::unmount(&path, rustix::mount::UnmountFlags::DETACH);
            std::fs::remove_file(&path).is_ok()
        })
        .count()
}

/// Runs the demo with the policy in `policy`, printing to `out`. `Ok` holds the report
/// (whose failures say whether every step behaved as expected); `Err` means the demo could
/// not run. Every namespace is gone when this returns, whichever way.
pub fn run(policy: &Path, out: &mut dyn Write) -> Result<Report, DemoError> {
    let mut say = |line: String| -> Result<(), DemoError> {
        writeln!(out, "{line}").map_err(DemoError::Output)
    };
    let (agent, header) = agent(policy)?;
    for line in header {
        say(line)?;
    }
    let mut lab = Lab::build(agent)?;
    for line in lab.describe() {
        say(line)?;
    }
    let mut report = Report::default();
    for (n, (title, step)) in steps::STEPS.into_iter().enumerate() {
        say(String::new())?;
        say(format!("== {}. {title}", n + 1))?;
        let checks = step(&mut lab);
        for line in lab.timeline() {
            say(line)?;
        }
        for (ok, what) in &checks.0 {
            let mark = if *ok { "ok" } else { "FAILED" };
            say(format!("   {mark}: {what}"))?;
        }
        report.steps.push((title.to_owned(), checks.0));
    }
    say(String::new())?;
    let mut checks = Checks::default();
    let counters = lock(&lab.node).datapath().counters();
    match counters {
        Ok(c) => {
            say(format!(
                "kernel counters: {} forwarded, {} redirected to the proxy, {} dropped, {} \
                 events lost",
                c.forwarded, c.redirected, c.dropped, c.events_lost
            ))?;
            checks.check(c.events_lost == 0, "no flow event was lost");
        }
        Err(e) => checks.check(false, format!("reading the counters: {e}")),
    }
    report.steps.push(("Counters".to_owned(), checks.0));
    drop(lab);
    Ok(report)
}

/// The node's two endpoints: the client pod (`default/client`, `app: client`,
/// [`CLIENT_ENDPOINT`]) at `client`, and `NodeLocal DNSCache` (`kube-system/node-local-dns`,
/// `k8s-app: node-local-dns`, [`NODE_LOCAL_DNS_ENDPOINT`]) at `node_local_dns`.
pub fn endpoints(client: Ipv4Addr, node_local_dns: Ipv4Addr) -> [Endpoint; 2] {
    let pod = |id, namespace: &str, (label, name): (&str, &str), addr| Endpoint {
        id,
        namespace: namespace.into(),
        name: name.into(),
        labels: [(label.to_owned(), name.to_owned())].into(),
        ips: vec![IpAddr::V4(addr)],
    };
    [
        pod(CLIENT_ENDPOINT, "default", ("app", "client"), client),
        pod(
            NODE_LOCAL_DNS_ENDPOINT,
            "kube-system",
            ("k8s-app", "node-local-dns"),
            node_local_dns,
        ),
    ]
}

/// The node's agent for the policies in `policy` and the demo's two endpoints, and the lines
/// that say so.
fn agent(policy: &Path) -> Result<(Agent, Vec<String>), DemoError> {
    let loaded = load_file(policy).map_err(DemoError::Policy)?;
    let mut header: Vec<String> = loaded
        .warnings
        .iter()
        .map(|w| format!("warning: {w}"))
        .collect();
    let policies = loaded.network_policies();
    if policies.is_empty() {
        return Err(DemoError::NoPolicy(policy.to_owned()));
    }
    let agent = Agent::new(
        AgentConfig::default(),
        &policies,
        &endpoints(POD_IP, PROXY_IP),
    )
    .map_err(DemoError::Agent)?;
    let identity = |id| {
        agent
            .compiler()
            .endpoint_identity(id)
            .map_or_else(|| "?".to_owned(), |i: Identity| i.to_string())
    };
    let names: Vec<String> = policies
        .iter()
        .map(|p| match &p.metadata.namespace {
            Some(ns) => format!("{} {ns}/{}", p.kind, p.metadata.name),
            None => format!("{} {}", p.kind, p.metadata.name),
        })
        .collect();
    header.push("fqdnpath: FQDN policy enforced in the kernel".into());
    header.push(format!(
        "policy: {}: {}",
        policy.display(),
        names.join(", ")
    ));
    header.push(format!(
        "identities: {CLIENT_POD} {POD_IP} is {}, {NODE_LOCAL_DNS_POD} {PROXY_IP} is {}; real \
         sockets and real time, with the GC every {} ms instead of every minute",
        identity(CLIENT_ENDPOINT),
        identity(NODE_LOCAL_DNS_ENDPOINT),
        GC_EVERY.as_millis()
    ));
    Ok((agent, header))
}
