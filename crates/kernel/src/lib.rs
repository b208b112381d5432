//! The in-kernel layer of fqdnpath: the eBPF datapath (`ebpf/fqdnpath.bpf.c` and the headers
//! of `ebpf/lib/`, C compiled by clang in the build script) loaded and driven from Rust
//! through aya.
//!
//! [`KernelDatapath`] implements the same [`Datapath`](fqdnpath_datapath::Datapath) trait as
//! the reference model: map changes ([`Delta`](fqdnpath_policy::compile::Delta)s) are written
//! into BPF maps (two LPM tries for the ipcache, an LPM trie for the policy, hash maps for
//! the IPv4 and IPv6 endpoints and LRU hashes for IPv4 and IPv6 conntrack, as Cilium's
//! `cilium_ct4_global` and `cilium_ct6_global`), and packets are judged in the kernel, either
//! through `BPF_PROG_TEST_RUN` (no interface needed: this is how the differential tests compare the
//! kernel with the model) or for real, once the program is attached to an interface on TC
//! egress (TCX, with a netlink clsact fallback). Every verdict emits a flow event into a ring
//! buffer; [`KernelDatapath::events`] turns them into [`FlowEvent`](fqdnpath_datapath::FlowEvent)s.
//!
//! The crate builds without clang (the backend then reports [`KernelError::Unavailable`]),
//! and everything that needs privileges says so with a typed error.
//!
//! Modules, in the order a packet's life needs them:
//! - `load`: the object embedded by the build script, [`unavailable`], and
//!   [`KernelDatapath::load`] (map sizes, the verifier, the map and program handles);
//! - `datapath`: [`KernelDatapath`] and its [`Datapath`](fqdnpath_datapath::Datapath) impl;
//! - `maps`: deltas and endpoints written into the BPF maps, conntrack listed, `reset`;
//! - `state`: the state map, the [`Clock`] the program reads and its flags;
//! - `test_run`: verdicts asked through `BPF_PROG_TEST_RUN`, failing closed;
//! - `attach`: TC egress and ingress ([`AttachMode`], [`Attachment`]), in a namespace or not;
//! - `events`: flow events from the ring buffer and the per-verdict [`Counters`];
//! - `error`: [`KernelError`] and [`Unavailable`].
//!
//! With the feature `test-support` (tests, benches, fuzzing, the demo): `netns` makes the
//! network namespaces and veth pairs of the end-to-end tests and the demo, and removes them
//! on drop; `kernel_tests_enabled` decides whether a kernel test runs or skips; the raw test
//! runs and timers (`KernelDatapath::test_run`, `time_program`, `egress_mark`); and
//! `Baseline`, the bench's bare program, from an object of its own (`ebpf/bench.bpf.c`).
//!
//! Time: with [`Clock::Virtual`] the program reads the time the caller passes (the model's
//! `now`), so conntrack lifetimes agree with the reference datapath's to the nanosecond; with
//! [`Clock::Kernel`] it reads `bpf_ktime_get_ns()` (`CLOCK_MONOTONIC`), for real traffic.
//!
//! Speed: the program looks each map up at a call site of its own (the IPv4 and IPv6 paths
//! are inlined apart), so the verifier calls each map's lookup directly; packet headers are
//! read as words, not copied byte by byte; and each CPU keeps the last endpoint it found,
//! valid while the endpoint maps' generation (`fqdn_endpoints_gen`, bumped by every change to
//! them) is the one it was found in. That spares the hash lookup of the source endpoint,
//! which Cilium does not make either (its program is compiled per endpoint). On kernels with
//! return-thunk mitigations every kernel call is expensive, so these count.
//!
//! One known difference with the model: conntrack is an LRU hash, as Cilium's, so a full
//! table evicts an old flow where the model refuses the new one
//! (`CT_MAP_INSERTION_FAILED`).

mod attach;
#[cfg(feature = "test-support")]
mod baseline;
mod datapath;
mod error;
mod events;
mod load;
mod maps;
#[cfg(feature = "test-support")]
pub mod netns;
mod state;
mod test_run;

pub use attach::{AttachMode, Attachment};
#[cfg(feature = "test-support")]
pub use baseline::Baseline;
pub use datapath::KernelDatapath;
pub use error::{KernelError, Unavailable};
pub use events::Counters;
pub use load::unavailable;
pub use state::Clock;

/// For tests: whether the kernel tests must run. With `FQDNPATH_REQUIRE_KERNEL=1` (CI, as
/// root) an unavailable backend panics instead of skipping; otherwise this prints one line
/// saying why the test skips and returns `false`.
///
/// # Panics
/// When the kernel tests are required and cannot run.
#[cfg(feature = "test-support")]
pub fn kernel_tests_enabled(test: &str) -> bool {
    let Some(why) = unavailable() else {
        return true;
    };
    assert!(
        std::env::var("FQDNPATH_REQUIRE_KERNEL").as_deref() != Ok("1"),
        "FQDNPATH_REQUIRE_KERNEL=1 but the kernel backend is unavailable: {why}"
    );
    eprintln!("skipping {test}: {why}");
    false
}
