//! fqdnpath: understand, test and enforce DNS-name-based (FQDN) egress policy the way Cilium
//! does.
//!
//! Cilium enforces `toFQDNs` policy in two phases: a pod's DNS answer passes its DNS proxy, the
//! answer's IPs are learned into an FQDN cache and programmed into eBPF maps, and only then is
//! the pod's connection to one of those IPs judged in the kernel. This crate family reproduces
//! that path, layer by layer:
//!
//! - [`names`] (`fqdnpath-names`): DNS names and `matchName`/`matchPattern` selectors with
//!   Cilium's exact rules, and a [`SelectorSet`](names::SelectorSet) that finds every selector
//!   matching a name in one pass.
//! - [`cache`] (`fqdnpath-cache`): DNS responses observed from wire data (hickory-proto) and
//!   Cilium's per-endpoint FQDN cache: TTLs, `tofqdns-min-ttl`, the per-name IP cap, GC, zombies,
//!   the global view and snapshots that survive a restart.
//! - [`policy`] (`fqdnpath-policy`): Cilium's `CiliumNetworkPolicy`,
//!   `CiliumClusterwideNetworkPolicy` and `CiliumLocalRedirectPolicy` loaded from YAML with
//!   Cilium's validation rules; errors and unknown-field warnings carry file, document and key
//!   path; labels, selectors and identities numbered as Cilium numbers them; compilation into
//!   the ipcache and per-endpoint policy maps, with deltas when the DNS state changes.
//! - [`datapath`] (`fqdnpath-datapath`): the map ABI shared with the eBPF program
//!   (`ebpf/include/fqdnpath_abi.h`), and the reference datapath: LPM ipcache, policy lookup as
//!   Cilium's `__policy_can_access`, connection tracking, Hubble-shaped flow events, service
//!   and Local Redirect Policy translation.
//! - [`agent`] (`fqdnpath-agent`): what one node's agent does, with no transport: the DNS
//!   proxy's decisions (`rules.dns`, REFUSED/NXDOMAIN), learning answers into map changes,
//!   holding answers until programmed, DNS and connection-tracking GC, restart and restore.
//! - [`hubble`] (`fqdnpath-hubble`): Hubble's flow model as `hubble observe -o jsonpb` prints
//!   it, read and written with serde, and its one-line text form.
//! - `kernel` (`fqdnpath-kernel`, feature `kernel`): the same datapath in the Linux kernel: a C
//!   eBPF program on TC egress whose maps are written from Rust through aya; judged packets come
//!   back as the same flow events. It needs root and clang, and says so when it cannot run.
//! - `node` (`fqdnpath-node`, feature `kernel`): one node's agent on real sockets (the UDP/TCP
//!   DNS proxy, the GC loop) driving the kernel datapath.
//! - `sim` (`fqdnpath-sim`, feature `sim`): the simulator of a small cluster on a virtual clock,
//!   driven by scenario files (the `fqdnpath run` command is `fqdnpath-cli`).
//!
//! Both features are on by default; `default-features = false` keeps the model crates alone
//! (no aya, no syscalls).
//!
//! Time is always an input (`now`); no model crate reads a clock (the kernel backend reads the
//! kernel's when it judges real traffic).
//!
//! ```
//! use fqdnpath::cache::{observe, wire::ResponseBuilder, EndpointCaches, EndpointId, FqdnConfig, Timestamp};
//! use fqdnpath::cache::hickory_proto::rr::RecordType;
//! use fqdnpath::names::{FqdnSelector, SelectorSet};
//!
//! let wire = ResponseBuilder::new(1, "api.example.com", RecordType::A)
//!     .address("api.example.com", "192.0.2.10".parse().unwrap(), 30)
//!     .to_wire()
//!     .unwrap();
//! let observation = observe(&wire).unwrap();
//! let mut caches = EndpointCaches::new(FqdnConfig::default());
//! caches.observe(EndpointId(7), Timestamp::from_secs(0), &observation);
//!
//! let mut selectors = SelectorSet::new();
//! let id = selectors.insert(FqdnSelector::match_pattern("*.example.com").unwrap());
//! assert_eq!(selectors.matches(observation.qname.as_str()), [id]);
//! assert!(caches.global_ips("api.example.com.").contains(&"192.0.2.10".parse().unwrap()));
//! ```
#![forbid(unsafe_code)]

pub use fqdnpath_agent as agent;
pub use fqdnpath_cache as cache;
pub use fqdnpath_datapath as datapath;
pub use fqdnpath_hubble as hubble;
#[cfg(feature = "kernel")]
pub use fqdnpath_kernel as kernel;
pub use fqdnpath_names as names;
#[cfg(feature = "kernel")]
pub use fqdnpath_node as node;
pub use fqdnpath_policy as policy;
#[cfg(feature = "sim")]
pub use fqdnpath_sim as sim;
