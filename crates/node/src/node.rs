//! The node: one agent and the datapath it programs, shared by the proxy's threads and the
//! GC, with a log of what they did (the demo prints it beside the flow events).
//!
//! The datapath is the kernel's ([`KernelDatapath`]) by default; any
//! [`Datapath`] will do, the reference model among them (the tests use it: no root needed).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use fqdnpath_agent::Agent;
use fqdnpath_cache::Timestamp;
use fqdnpath_datapath::{Datapath, DatapathError, PROTO_TCP, PROTO_UDP};
use fqdnpath_kernel::KernelDatapath;
use fqdnpath_policy::compile::Delta;
use fqdnpath_policy::policymap::Protocol;

use crate::clock;

/// One node's agent (DNS cache, compiled maps) and the datapath that enforces them.
#[derive(Debug)]
pub struct Node<D = KernelDatapath> {
    agent: Agent,
    dp: D,
    log: Vec<(Timestamp, String)>,
}

/// The node, shared by the proxy's threads, the GC and whoever watches it.
pub type SharedNode<D = KernelDatapath> = Arc<Mutex<Node<D>>>;

/// Locks the node. A thread that panicked while holding it left nothing half-written that
/// matters: every change to the datapath is one [`Datapath::apply`].
pub fn lock<D>(node: &SharedNode<D>) -> MutexGuard<'_, Node<D>> {
    node.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<D: Datapath> Node<D> {
    /// The node of `agent`, enforcing through `dp` (already programmed with the agent's maps:
    /// [`Datapath::program`]).
    pub fn new(agent: Agent, dp: D) -> Self {
        Self {
            agent,
            dp,
            log: Vec::new(),
        }
    }

    /// The node, ready to share.
    pub fn shared(self) -> SharedNode<D> {
        Arc::new(Mutex::new(self))
    }

    /// The agent.
    pub fn agent(&self) -> &Agent {
        &self.agent
    }

    /// The agent, to drive it.
    pub fn agent_mut(&mut self) -> &mut Agent {
        &mut self.agent
    }

    /// The datapath.
    pub fn datapath(&self) -> &D {
        &self.dp
    }

    /// The datapath, to read its events or change its attachments.
    pub fn datapath_mut(&mut self) -> &mut D {
        &mut self.dp
    }

    /// Adds `text` to the log, stamped with [`clock::now`].
    pub fn note(&mut self, text: String) {
        self.log.push((clock::now(), text));
    }

    /// Takes the log written since the last call: (when, text), oldest first.
    pub fn take_log(&mut self) -> Vec<(Timestamp, String)> {
        std::mem::take(&mut self.log)
    }

    /// Writes `deltas` into the datapath; returns how long it took.
    pub fn program(&mut self, deltas: &[Delta]) -> Result<Duration, DatapathError> {
        let started = Instant::now();
        self.dp.apply(deltas)?;
        Ok(started.elapsed())
    }
}

/// A policy key's protocol and port, as `TCP/8080`.
fn port_text(proto: Protocol, port: u16, prefix_len: u8) -> String {
    let name = match proto {
        0 => return "any protocol".to_owned(),
        PROTO_TCP => "TCP".to_owned(),
        PROTO_UDP => "UDP".to_owned(),
        other => format!("protocol {other}"),
    };
    match prefix_len {
        0 => format!("{name}/any port"),
        16 => format!("{name}/{port}"),
        len => format!("{name}/{port}/{len}"),
    }
}

/// One map change, in words: `ipcache 198.51.100.10/32 -> identity 16777217`.
pub fn describe_delta(delta: &Delta) -> String {
    match delta {
        Delta::IpcacheUpsert { prefix, identity } => {
            format!("ipcache {prefix} -> identity {identity}")
        }
        Delta::IpcacheDelete { prefix } => format!("ipcache delete {prefix}"),
        Delta::PolicyUpsert { endpoint, key, .. } => format!(
            "policy of endpoint {endpoint}: allow identity {} {}",
            key.identity,
            port_text(key.proto, key.port, key.port_prefix_len)
        ),
        Delta::PolicyDelete { endpoint, key } => format!(
            "policy of endpoint {endpoint}: delete identity {} {}",
            key.identity,
            port_text(key.proto, key.port, key.port_prefix_len)
        ),
        _ => "a map change of a kind this node does not describe".to_owned(),
    }
}

/// Map changes in words, `; ` between them.
pub fn describe_deltas(deltas: &[Delta]) -> String {
    deltas
        .iter()
        .map(describe_delta)
        .collect::<Vec<_>>()
        .join("; ")
}
