//! Network namespaces and veth pairs for the end-to-end tests and the demo (feature
//! `test-support`), made with iproute2's `ip` and removed on drop (also when a test panics).
//!
//! aya resolves interface names and speaks netlink in the calling thread's network
//! namespace, so attaching in a namespace means entering it on this thread
//! ([`NetNs::enter`]) and coming back afterwards (the guard's drop).

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::KernelError;
use crate::attach::InNamespace;

/// Runs `ip` with `args`; an error says which command failed and what it printed.
pub fn ip(args: &[&str]) -> Result<(), KernelError> {
    let owned = || args.iter().map(|a| (*a).to_owned()).collect();
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|source| KernelError::IpSpawn {
            args: owned(),
            source,
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(KernelError::IpFailed {
            args: owned(),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

/// Runs `ip` inside the namespace `ns`.
pub fn ip_in(ns: &str, args: &[&str]) -> Result<(), KernelError> {
    let mut all = vec!["-n", ns];
    all.extend_from_slice(args);
    ip(&all)
}

/// A thread inside a network namespace; back in the namespace it came from on drop.
#[derive(Debug)]
pub struct NetNs {
    /// Held for its drop, which moves the thread back.
    _inside: InNamespace,
}

impl NetNs {
    /// Moves this thread into the namespace named `name` (`/var/run/netns/<name>`).
    pub fn enter(name: &str) -> Result<Self, KernelError> {
        InNamespace::enter(name).map(|inside| Self { _inside: inside })
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A network namespace made for a test or the demo, deleted on drop with everything in it
/// (its veth ends go with it, and so do their peers).
#[derive(Debug)]
pub struct Namespace {
    name: String,
}

impl Namespace {
    /// Makes a namespace named `<prefix>-<pid>-<n>` (unique across the tests of a process and
    /// across processes), with its loopback up.
    pub fn new(prefix: &str) -> Result<Self, KernelError> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}-{}-{n}", std::process::id());
        ip(&["netns", "add", &name])?;
        let ns = Self { name };
        ip_in(&ns.name, &["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Its name under `/var/run/netns`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip` inside it.
    pub fn ip(&self, args: &[&str]) -> Result<(), KernelError> {
        ip_in(&self.name, args)
    }

    /// Moves this thread into it until the guard drops.
    pub fn enter(&self) -> Result<NetNs, KernelError> {
        NetNs::enter(&self.name)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("fqdnpath-kernel: {e}");
        }
    }
}

/// One end of a veth pair: its namespace, name, address and MAC.
#[derive(Clone, Debug)]
pub struct VethEnd {
    /// Interface name.
    pub iface: String,
    /// Address with prefix length, e.g. `10.200.0.1/24`.
    pub cidr: String,
    /// MAC address.
    pub mac: String,
}

impl VethEnd {
    /// The address without the prefix length.
    pub fn addr(&self) -> &str {
        self.cidr.split('/').next().unwrap_or(&self.cidr)
    }
}

/// Connects two namespaces with a veth pair: addresses, fixed MACs, links up, and permanent
/// neighbour entries on both sides so that no ARP or neighbour discovery is needed (traffic
/// is then deterministic).
pub fn veth_pair(a: (&Namespace, &VethEnd), b: (&Namespace, &VethEnd)) -> Result<(), KernelError> {
    let (ns_a, end_a) = a;
    let (ns_b, end_b) = b;
    ns_a.ip(&[
        "link",
        "add",
        &end_a.iface,
        "address",
        &end_a.mac,
        "type",
        "veth",
        "peer",
        "name",
        &end_b.iface,
        "address",
        &end_b.mac,
        "netns",
        ns_b.name(),
    ])?;
    for (ns, end, peer) in [(ns_a, end_a, end_b), (ns_b, end_b, end_a)] {
        let family = if end.cidr.contains(':') { "-6" } else { "-4" };
        let mut args = vec![
            family,
            "addr",
            "add",
            end.cidr.as_str(),
            "dev",
            end.iface.as_str(),
        ];
        if family == "-6" {
            args.push("nodad");
        }
        ns.ip(&args)?;
        ns.ip(&["link", "set", &end.iface, "up"])?;
        ns.ip(&[
            family,
            "neigh",
            "replace",
            peer.addr(),
            "lladdr",
            &peer.mac,
            "dev",
            &end.iface,
            "nud",
            "permanent",
        ])?;
    }
    Ok(())
}
