//! The in-kernel layer of fqdnpath: the eBPF datapath (`ebpf/fqdnpath.bpf.c`, C compiled by
//! clang in the build script) loaded and driven from Rust through aya.
//!
//! [`KernelDatapath`] implements the same [`Datapath`](fqdnpath_datapath::Datapath) trait as
//! the reference model: map changes ([`Delta`](fqdnpath_policy::compile::Delta)s) are written
//! into BPF maps (two LPM tries for the ipcache, an LPM trie for the policy, hash maps for
//! the IPv4 and IPv6 endpoints and LRU hashes for IPv4 and IPv6 conntrack, as Cilium's
//! `cilium_ct4_global` and `cilium_ct6_global`), and packets are judged in the kernel, either
//! through
//! `BPF_PROG_TEST_RUN` (no interface needed: this is how the differential tests compare the
//! kernel with the model) or for real, once the program is attached to an interface on TC
//! egress (TCX, with a netlink clsact fallback). Every verdict emits a flow event into a ring
//! buffer; [`KernelDatapath::events`] turns them into [`FlowEvent`](fqdnpath_datapath::FlowEvent)s.
//!
//! The crate builds without clang (the backend then reports [`KernelError::Unavailable`]),
//! and everything that needs privileges says so with a typed error. [`netns`] makes the
//! network namespaces of the end-to-end tests and the demo, and removes them on drop.
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

mod datapath;
pub mod netns;

pub use datapath::{AttachMode, Attachment, Clock, Counters, KernelDatapath, KernelError};

/// The compiled eBPF object, if the build script found clang.
#[cfg(fqdnpath_bpf)]
pub(crate) static OBJECT: Option<&[u8]> = Some(aya::include_bytes_aligned!(concat!(
    env!("OUT_DIR"),
    "/fqdnpath.bpf.o"
)));
/// The compiled eBPF object, if the build script found clang.
#[cfg(not(fqdnpath_bpf))]
pub(crate) static OBJECT: Option<&[u8]> = None;

/// Why the kernel backend cannot run here, or `None` if it can: the eBPF object was compiled
/// and the process may load BPF programs (it runs as root). Loading can still fail (a kernel
/// without BPF): [`KernelDatapath::load`] then says why.
pub fn unavailable() -> Option<String> {
    if OBJECT.is_none() {
        return Some(
            option_env!("FQDNPATH_BPF_MISSING")
                .unwrap_or("the eBPF object was not compiled")
                .to_owned(),
        );
    }
    if !rustix::process::geteuid().is_root() {
        return Some("not root: loading BPF programs needs CAP_BPF and CAP_NET_ADMIN".into());
    }
    None
}

/// For tests: whether the kernel tests must run. With `FQDNPATH_REQUIRE_KERNEL=1` (CI, as
/// root) an unavailable backend panics instead of skipping; otherwise this prints one line
/// saying why the test skips and returns `false`.
///
/// # Panics
/// When the kernel tests are required and cannot run.
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
