//! The datapath layer of fqdnpath: the vocabulary every backend speaks, the map ABI shared with
//! the eBPF program, and a pure-Rust reference datapath that judges packets exactly as
//! SEMANTICS.md section 5 says.
//!
//! The vocabulary:
//! - [`packet`]: [`Packet`], what is judged.
//! - [`flow`]: [`Verdict`] and [`FlowEvent`], what a verdict produces (shaped after Hubble's
//!   `Flow`).
//! - [`backend`]: the [`Datapath`] trait (apply map changes, judge packets, list entries,
//!   report capacity), [`MapSizes`], [`Capacity`] and [`DatapathError`].
//!
//! The machinery:
//! - [`abi`]: `#[repr(C)]` twins of `ebpf/include/fqdnpath_abi.h` (ipcache, policy, endpoint,
//!   conntrack keys and values, flow events), with size and offset assertions; their memory
//!   images and conversions to and from policy keys in `abi/image.rs`.
//! - [`frame`]: the parser of Ethernet frames (the model of the eBPF program's), and a builder
//!   of test frames.
//! - [`lpm`]: longest-prefix match with a BPF-like capacity, IPv4 and IPv6 apart.
//! - [`conntrack`]: connection tracking with Cilium's lifetimes, and the GC that tells the DNS
//!   cache which destinations still carry connections.
//! - [`reference`](mod@reference): [`ReferenceDatapath`], the in-memory implementation of [`Datapath`].
//! - [`service`]: service translation and Local Redirect Policies, applied before policy.
//! - `conformance` (feature `conformance`): the behaviour suite every backend runs.
//!
//! The policy-map lookup itself lives with the policy map, in
//! `fqdnpath_policy::policymap::PolicyMap::lookup`.
#![forbid(unsafe_code)]

pub mod abi;
pub mod backend;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod conntrack;
pub mod flow;
pub mod frame;
pub mod lpm;
pub mod packet;
pub mod reference;
pub mod service;

pub use backend::{BackendError, Capacity, Datapath, DatapathError, MapSizes, MapUsage};
pub use flow::{FlowEvent, Verdict, invalid_frame_event};
pub use fqdnpath_policy::policymap::{PROTO_TCP, PROTO_UDP};
pub use fqdnpath_policy::table;
pub use packet::Packet;
pub use reference::ReferenceDatapath;
