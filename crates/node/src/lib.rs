//! One node's FQDN agent on real sockets: the I/O crate over the transport-agnostic
//! [`fqdnpath_agent`], as hickory puts its servers over its no-I/O protocol crate.
//!
//! The agent decides; this crate moves bytes and reads the clock. A DNS query arrives on a UDP
//! or TCP socket, the agent says whether it may be forwarded, the upstream's answer is learned,
//! its map changes are written into the datapath (the eBPF maps of
//! [`KernelDatapath`](fqdnpath_kernel::KernelDatapath)), and only then does the answer go back
//! to the client. The GC jobs run on a schedule in real time. With `fqdnpath-kernel`, this is
//! one of the two crates that make syscalls.
//!
//! - [`node`]: [`Node`], the agent and its datapath together, shared by the proxy's threads
//!   and the GC ([`SharedNode`]), with a log of what they did.
//! - [`proxy`]: [`DnsProxy`], the DNS proxy's UDP and TCP listeners: the policy's DNS rules
//!   for the client, the agent's decision, forwarding upstream, learning, programming, and
//!   the answer held until programmed.
//! - [`gc`]: the DNS GC and the conntrack GC as passes over a node, and [`GcLoop`], the two
//!   on a schedule.
//! - [`transport`]: DNS over TCP framing, the accept loop, and one exchange with an upstream
//!   server over UDP or TCP.
//! - [`clock`]: `CLOCK_MONOTONIC` as a [`Timestamp`](fqdnpath_cache::Timestamp), the clock
//!   the eBPF program stamps its events and conntrack entries with.
//! - `demo` (feature `demo`): the in-kernel enforcement demo, a lab of three network
//!   namespaces around the proxy and the eBPF datapath, run by `examples/kernel_demo.rs` and
//!   `tests/kernel_demo.rs`.
#![forbid(unsafe_code)]

pub mod clock;
#[cfg(feature = "demo")]
pub mod demo;
pub mod gc;
pub mod node;
pub mod proxy;
pub mod transport;

pub use gc::{CtGcPass, DnsGcPass, GcError, GcLoop, GcPass};
pub use node::{Node, SharedNode, lock};
pub use proxy::DnsProxy;
pub use transport::TransportError;
