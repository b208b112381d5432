//! [`KernelError`], what can go wrong in the kernel backend, and [`Unavailable`], why it cannot
//! run at all; with the conversions from aya's errors that keep the verifier log.

use std::io;
use std::path::PathBuf;

use aya::maps::MapError;
use aya::programs::ProgramError;
use aya::programs::tc::TcError;
use fqdnpath_datapath::DatapathError;

/// What went wrong in the kernel backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    /// The backend cannot run here (no eBPF object, not root).
    #[error("the kernel backend is unavailable: {0}")]
    Unavailable(#[from] Unavailable),
    /// The object could not be loaded (maps created, relocations applied).
    #[error("loading the eBPF object: {0}")]
    Load(#[source] Box<aya::EbpfError>),
    /// The verifier rejected a program; `log` is its log.
    #[error("the verifier rejected {program}: {source}\n{log}")]
    Verifier {
        /// The program.
        program: &'static str,
        /// The syscall's error.
        source: io::Error,
        /// The verifier's log.
        log: String,
    },
    /// A program operation (load, test run, attach, detach) failed.
    #[error("{op} {program}: {source}")]
    Program {
        /// What was done.
        op: &'static str,
        /// The program.
        program: &'static str,
        /// Why it failed.
        source: Box<ProgramError>,
    },
    /// A map operation failed.
    #[error("{op} on map {map}: {source}")]
    Map {
        /// What was done.
        op: &'static str,
        /// The map.
        map: &'static str,
        /// Why it failed.
        source: Box<MapError>,
    },
    /// Opening a network namespace, or moving this thread into one, failed.
    #[error("{op} network namespace {}: {source}", path.display())]
    Namespace {
        /// What was done: "opening" or "entering".
        op: &'static str,
        /// The namespace's file (`/var/run/netns/<name>`, or this thread's own).
        path: PathBuf,
        /// Why it failed.
        source: io::Error,
    },
    /// The clsact qdisc the netlink fallback attaches to could not be added.
    #[error("adding a clsact qdisc to {iface}: {source}")]
    Qdisc {
        /// The interface.
        iface: String,
        /// Why it failed.
        source: Box<TcError>,
    },
    /// Waiting for the ring buffer failed.
    #[error("poll on the ring buffer: {0}")]
    Poll(#[source] io::Error),
    /// `ip` (iproute2) could not be run.
    #[cfg(feature = "test-support")]
    #[error("running ip {}: {source}", args.join(" "))]
    IpSpawn {
        /// Its arguments.
        args: Vec<String>,
        /// Why it could not be run.
        source: io::Error,
    },
    /// `ip` (iproute2) ran and failed.
    #[cfg(feature = "test-support")]
    #[error("ip {} failed: {}", args.join(" "), stderr.trim())]
    IpFailed {
        /// Its arguments.
        args: Vec<String>,
        /// How it exited.
        status: std::process::ExitStatus,
        /// What it printed on its standard error.
        stderr: String,
    },
    /// The program's return value and its flow event disagree.
    #[error(
        "inconsistent result from {program}: returned {returned} but its event says verdict {event_verdict}"
    )]
    Inconsistent {
        /// The program.
        program: &'static str,
        /// Its return value (`TC_ACT_*`).
        returned: u32,
        /// The verdict in its event (`VERDICT_*`).
        event_verdict: u8,
    },
    /// The program judged an IP packet without emitting a flow event.
    #[error(
        "inconsistent result from {program}: no flow event (dropped: {dropped}); events lost: {events_lost}"
    )]
    NoEvent {
        /// The program.
        program: &'static str,
        /// Whether it dropped the packet.
        dropped: bool,
        /// The events-lost counter (events the ring buffer had no room for).
        events_lost: u64,
    },
}

/// Why the kernel backend cannot run here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unavailable {
    /// The build script found no clang, so the eBPF object was not compiled.
    #[error("{clang} not found: the eBPF program was not compiled")]
    NotCompiled {
        /// The compiler it looked for (`BPF_CLANG`, else `clang`).
        clang: &'static str,
    },
    /// The process does not run as root.
    #[error("not root: loading BPF programs needs CAP_BPF and CAP_NET_ADMIN")]
    NotRoot,
}

impl From<KernelError> for DatapathError {
    fn from(e: KernelError) -> Self {
        DatapathError::Backend(Box::new(e))
    }
}

/// Wraps a map operation's error with what was done on which map.
pub(crate) fn map_err(op: &'static str, map: &'static str) -> impl FnOnce(MapError) -> KernelError {
    move |source| KernelError::Map {
        op,
        map,
        source: Box::new(source),
    }
}

/// Wraps a program operation's error; a verifier rejection keeps the verifier's log.
pub(crate) fn prog_err(
    op: &'static str,
    program: &'static str,
) -> impl FnOnce(ProgramError) -> KernelError {
    move |source| match source {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => KernelError::Verifier {
            program,
            source: io_error,
            log: verifier_log.to_string(),
        },
        other => KernelError::Program {
            op,
            program,
            source: Box::new(other),
        },
    }
}

/// The errno of a failed map syscall, if that is what failed.
pub(crate) fn errno(e: &MapError) -> Option<i32> {
    match e {
        MapError::SyscallError(s) => s.io_error.raw_os_error(),
        MapError::IoError(e) => e.raw_os_error(),
        _ => None,
    }
}

/// The errno of a failed TC operation (netlink or syscall), if that is what failed.
pub(crate) fn tc_errno(e: &TcError) -> Option<i32> {
    match e {
        TcError::NetlinkError(e) => e.raw_os_error(),
        TcError::IoError(e) => e.raw_os_error(),
        _ => None,
    }
}
