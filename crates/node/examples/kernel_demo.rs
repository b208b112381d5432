//! FQDN policy enforced in the kernel, with real packets: a client pod, a node and the outside
//! world in three network namespaces; a real authoritative DNS server; fqdnpath's DNS proxy
//! on the node as the pod's nameserver (169.254.20.10, like `NodeLocal DNSCache`); the eBPF
//! datapath on the pod's interface; a `CiliumNetworkPolicy` read from a YAML file.
//!
//! It shows, with Hubble-style lines of the eBPF program's flow events: a resolved name's
//! address reachable over TCP, an address no answer named dropped, a query that `rules.dns`
//! does not allow answered REFUSED, and, once the TTL has run out and the GC has run, a new
//! connection to the formerly resolved address dropped.
//!
//! Run as root: `cargo run -p fqdnpath-node --example kernel_demo [POLICY.yaml]` (default:
//! `crates/node/examples/demo/policy.yaml`). Exit status: 0 when every step behaved as expected, 1 when
//! one did not or the demo could not run, 2 when it cannot run here (not root, or no eBPF
//! object), 130 after Ctrl-C. Every namespace it made is removed on the way out.
//!
//! The demo itself is `fqdnpath_node::demo` (the node crate's `demo` feature), over the
//! crate's DNS proxy and GC loop; this program adds the arguments, Ctrl-C and the exit status.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicBool, Ordering};

use fqdnpath_node::demo;

/// Set by the Ctrl-C handler.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The default policy file.
fn default_policy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo/policy.yaml")
}

fn main() -> ExitCode {
    let policy = std::env::args_os()
        .nth(1)
        .map_or_else(default_policy, PathBuf::from);
    if let Some(why) = fqdnpath_kernel::unavailable() {
        eprintln!("kernel_demo: cannot run here: {why}");
        return ExitCode::from(2);
    }
    let pid = std::process::id();
    if let Err(e) = ctrlc::set_handler(move || {
        INTERRUPTED.store(true, Ordering::SeqCst);
        // No namespace is made from here on, and none is half made.
        let _no_more = demo::MAKING_NAMESPACES
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let removed = demo::remove_namespaces(pid);
        eprintln!("\nkernel_demo: interrupted; removed {removed} network namespaces");
        std::process::exit(130);
    }) {
        eprintln!("kernel_demo: cannot handle Ctrl-C: {e}");
        return ExitCode::FAILURE;
    }
    let result = demo::run(&policy, &mut std::io::stdout());
    if INTERRUPTED.load(Ordering::SeqCst) {
        // Ctrl-C reached the demo's `ip` commands too, and it failed for that: the handler
        // is removing what is left, and exits.
        loop {
            std::thread::park();
        }
    }
    match result {
        Ok(report) => {
            let failures = report.failures();
            if failures.is_empty() {
                let checks: usize = report.steps.iter().map(|(_, c)| c.len()).sum();
                println!("\nkernel_demo: every step behaved as expected ({checks} checks)");
                ExitCode::SUCCESS
            } else {
                eprintln!("\nkernel_demo: {} checks failed:", failures.len());
                for failure in failures {
                    eprintln!("  {failure}");
                }
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("kernel_demo: {e}");
            ExitCode::FAILURE
        }
    }
}
