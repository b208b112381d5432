//! The simulator of fqdnpath: a small Cilium cluster on a virtual clock, driven by scenario
//! files, for property tests and for users' what-if questions.
//!
//! - [`lint`]: static findings on scenarios and manifests (`fqdnpath lint`).
//! - [`scenario`]: the scenario file format (`apiVersion: fqdnpath/v1`, SCENARIOS.md), with
//!   strict keys and errors that name the file, the key path and the reason, all checked when
//!   the file is loaded; each step is one [`scenario::Action`].
//! - [`simulation`]: the [`Simulation`]: pods, `DaemonSet`s, services and Local Redirect
//!   Policies; one agent ([`fqdnpath_agent`]) and one reference datapath per node;
//!   authoritative and caching DNS servers answering real wire messages; a virtual clock with
//!   the DNS GC and the connection-tracking GC on schedule; expectations; `explain`; every
//!   flow and DNS answer as Hubble's flow ([`fqdnpath_hubble::GetFlowsResponse`], in each
//!   [`simulation::Line`]), printed as text (`hubble observe` style) or as Hubble's JSON.
//!
//! Every step of the format runs: `resolve`, `connect`, `send`, `close`, `advance`, `at`,
//! `apply` and `delete` (the agents recompile, keep their caches, and the datapath receives
//! the difference), `restart-agent` (caches restored as after a Cilium restart) and
//! `update-zone`. Property tests of the two-phase flow (soundness, completeness, hold, deny
//! wins, determinism) live in `tests/two_phase.rs`.
#![forbid(unsafe_code)]

pub mod lint;
pub mod scenario;
pub mod simulation;

pub use scenario::{Scenario, ScenarioError};
pub use simulation::{DatapathFactory, Report, Simulation};
