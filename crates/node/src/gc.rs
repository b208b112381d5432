//! The node's periodic jobs, in real time: the DNS GC (expired names leave the cache and
//! become zombies, dead zombies leave, and their map changes go into the datapath) and the
//! conntrack GC (expired flows leave the datapath, and the agent learns which destinations
//! still carry connections, so that their zombies stay alive).
//!
//! [`Node::dns_gc`] and [`Node::ct_gc`] run one pass each; [`GcLoop`] runs them in turn on a
//! schedule. Cilium runs its DNS GC every minute, and its conntrack GC at an interval it
//! adapts to the table's churn; the demo runs both every half second.

use std::net::IpAddr;
use std::ops::ControlFlow;
use std::thread;
use std::time::Duration;

use fqdnpath_agent::AgentError;
use fqdnpath_cache::endpoint::EndpointGc;
use fqdnpath_cache::{EndpointId, Timestamp};
use fqdnpath_datapath::{Datapath, DatapathError};
use fqdnpath_policy::compile::Delta;

use crate::clock;
use crate::node::{Node, SharedNode, describe_deltas, lock};

/// Why a DNS GC pass failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GcError {
    /// The agent's GC failed (compiling the changes).
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// Writing the changes into the datapath failed.
    #[error(transparent)]
    Datapath(#[from] DatapathError),
}

/// What one DNS GC pass did.
#[derive(Clone, Debug)]
pub struct DnsGcPass {
    /// When it ran.
    pub at: Timestamp,
    /// Per endpoint: the pairs that left the cache, and the zombies that died.
    pub reports: Vec<EndpointGc>,
    /// The map changes written into the datapath.
    pub deltas: Vec<Delta>,
}

/// What one conntrack GC pass did.
#[derive(Clone, Debug)]
pub struct CtGcPass {
    /// When it ran: flows that expire after this stay.
    pub at: Timestamp,
    /// The live egress flows' (endpoint, destination) pairs, as the agent was told.
    pub live: Vec<(EndpointId, IpAddr)>,
}

/// One pass of either GC.
#[derive(Clone, Debug)]
pub enum GcPass {
    /// A DNS GC pass.
    Dns(DnsGcPass),
    /// A conntrack GC pass.
    Conntrack(CtGcPass),
}

impl<D: Datapath> Node<D> {
    /// One DNS GC pass at `now`: expired pairs become zombies, dead zombies leave, and the
    /// map changes go into the datapath. Each departure is noted in the log.
    #[doc(alias = "tofqdns-dns-gc")]
    pub fn dns_gc(&mut self, now: Timestamp) -> Result<DnsGcPass, GcError> {
        let (reports, deltas) = self.agent_mut().dns_gc(now)?;
        for report in &reports {
            for removed in &report.cache.removed {
                self.note(format!(
                    "DNS GC: {} {} expired and left the cache; it is a zombie now, keeping its \
                     identity while a connection may use it",
                    removed.name, removed.ip
                ));
            }
            for zombie in &report.zombies.dead {
                self.note(format!(
                    "DNS GC: zombie {} is dead (the last conntrack GC saw no flow to it, two \
                     passes since it became a zombie)",
                    zombie.ip
                ));
            }
        }
        if !deltas.is_empty() {
            let took = self.program(&deltas)?;
            self.note(format!(
                "DNS GC: {}; programmed in {} us",
                describe_deltas(&deltas),
                took.as_micros()
            ));
        }
        Ok(DnsGcPass {
            at: now,
            reports,
            deltas,
        })
    }

    /// One conntrack GC pass at `now`: the datapath's expired flows go, and the agent learns
    /// which destinations still carry connections (their zombies stay alive).
    pub fn ct_gc(&mut self, now: Timestamp) -> CtGcPass {
        let live: Vec<(EndpointId, IpAddr)> = self.datapath_mut().conntrack_gc(now);
        self.agent_mut().ct_gc(now, &live);
        CtGcPass { at: now, live }
    }
}

/// The DNS GC and the conntrack GC on a schedule, in real time ([`clock::now`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GcLoop {
    every: Duration,
}

impl GcLoop {
    /// A loop that runs the two GCs `every` apart.
    pub fn new(every: Duration) -> Self {
        Self { every }
    }

    /// The time between a DNS GC pass and the next conntrack GC pass.
    pub fn every(&self) -> Duration {
        self.every
    }

    /// Runs the GCs on `node` until `after` breaks: a DNS GC pass, then, `every` later, a
    /// conntrack GC pass followed at once by the next DNS GC pass (which then sees which
    /// zombies the conntrack GC found alive), and so on. After each pass, `after` sees it
    /// with the node still locked (the pass's changes and `after`'s reading of the node are
    /// one step for the proxy's threads). Returns what `after` broke with, or the first DNS
    /// GC error.
    pub fn run<D, B>(
        &self,
        node: &SharedNode<D>,
        mut after: impl FnMut(&mut Node<D>, &GcPass) -> ControlFlow<B>,
    ) -> Result<B, GcError>
    where
        D: Datapath,
    {
        loop {
            {
                let mut node = lock(node);
                let pass = GcPass::Dns(node.dns_gc(clock::now())?);
                if let ControlFlow::Break(b) = after(&mut node, &pass) {
                    return Ok(b);
                }
            }
            thread::sleep(self.every);
            let mut node = lock(node);
            let pass = GcPass::Conntrack(node.ct_gc(clock::now()));
            if let ControlFlow::Break(b) = after(&mut node, &pass) {
                return Ok(b);
            }
        }
    }
}
