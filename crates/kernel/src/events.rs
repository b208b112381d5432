//! What the programs report: flow events from the ring buffer (`fqdn_events`), turned into the
//! model's [`FlowEvent`]s, and the per-verdict counters (`fqdn_counters`).

use std::time::Duration;

use fqdnpath_datapath::abi::{self, FlowEventAbi, PolicyKeyAbi};
use fqdnpath_datapath::frame::tcp_flags;
use fqdnpath_datapath::{FlowEvent, Packet, Verdict};
use fqdnpath_names::{EndpointId, Timestamp};
use fqdnpath_policy::identity::Identity;
use fqdnpath_policy::policymap::{DropReason, MatchType, PROTO_TCP};

use crate::datapath::KernelDatapath;
use crate::error::{KernelError, map_err};

/// The program's per-verdict counters, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets forwarded.
    pub forwarded: u64,
    /// Packets redirected to the DNS proxy.
    pub redirected: u64,
    /// Packets dropped.
    pub dropped: u64,
    /// Flow events the ring buffer had no room for.
    pub events_lost: u64,
}

impl KernelDatapath {
    /// Moves what the ring buffer holds into the backlog.
    pub(crate) fn drain_ring(&mut self) {
        while let Some(item) = self.events.next() {
            if let Some(ev) = FlowEventAbi::from_bytes(&item) {
                self.backlog.push_back(ev);
            }
        }
    }

    /// The flow events emitted since the last call (real traffic on attached interfaces),
    /// oldest first. Events of test runs are returned by the test runs instead.
    pub fn events(&mut self) -> Vec<FlowEvent> {
        self.drain_ring();
        let raw: Vec<FlowEventAbi> = self.backlog.drain(..).collect();
        raw.iter().map(|ev| self.to_flow_event(ev)).collect()
    }

    /// Waits until the ring buffer has an event or `timeout` passes.
    pub fn wait_events(&mut self, timeout: Duration) -> Result<(), KernelError> {
        use std::os::fd::AsFd as _;
        if !self.backlog.is_empty() {
            return Ok(());
        }
        let fd = self.events.as_fd();
        let mut fds = [rustix::event::PollFd::new(
            &fd,
            rustix::event::PollFlags::IN,
        )];
        let timeout = rustix::time::Timespec {
            tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
            Err(e) => Err(KernelError::Poll(e.into())),
        }
    }

    /// The per-verdict counters.
    pub fn counters(&self) -> Result<Counters, KernelError> {
        let read = |index: u32| -> Result<u64, KernelError> {
            let values = self
                .counters
                .get(&index, 0)
                .map_err(map_err("lookup", "fqdn_counters"))?;
            Ok(values.iter().sum())
        };
        Ok(Counters {
            forwarded: read(abi::COUNTER_FORWARDED)?,
            redirected: read(abi::COUNTER_REDIRECTED)?,
            dropped: read(abi::COUNTER_DROPPED)?,
            events_lost: read(abi::COUNTER_EVENTS_LOST)?,
        })
    }

    /// A kernel event as the model's flow event.
    pub(crate) fn to_flow_event(&self, ev: &FlowEventAbi) -> FlowEvent {
        let verdict = match ev.verdict {
            abi::VERDICT_FORWARDED => Verdict::Forwarded,
            abi::VERDICT_REDIRECTED => Verdict::Redirected,
            _ => Verdict::Dropped,
        };
        let proto = ev.protocol;
        let packet = Packet {
            src: ev.src(),
            dst: ev.dst(),
            proto,
            sport: u16::from_be(ev.sport),
            dport: u16::from_be(ev.dport),
            flags: if proto == PROTO_TCP {
                tcp_flags(ev.tcp_flags)
            } else {
                tcp_flags(0)
            },
        };
        let endpoint = (ev.endpoint_id != 0).then_some(EndpointId(ev.endpoint_id));
        let egress = ev.egress == 1;
        let policy_key = (ev.policy_prefix_len != abi::NO_POLICY_KEY).then(|| {
            let remote = if egress {
                ev.dst_identity
            } else {
                ev.src_identity
            };
            let identity = if ev.policy_specific == 1 {
                Identity(remote)
            } else {
                Identity::ANY
            };
            PolicyKeyAbi {
                prefixlen: abi::POLICY_FIXED_BITS + u32::from(ev.policy_prefix_len),
                endpoint_id: ev.endpoint_id,
                egress: 1,
                pad0: 0,
                identity: identity.0,
                protocol: proto,
                dport: packet.dport.to_be_bytes(),
                pad1: 0,
            }
            .to_key()
        });
        let dns = match (verdict, endpoint, policy_key) {
            (Verdict::Redirected, Some(ep), Some(key)) => self.dns.get(&(ep, key)).cloned(),
            _ => None,
        };
        FlowEvent {
            time: Timestamp::from_nanos(ev.ts_ns),
            verdict,
            drop_reason: DropReason::from_code(ev.drop_reason),
            egress,
            endpoint,
            packet,
            src_identity: Identity(ev.src_identity),
            dst_identity: Identity(ev.dst_identity),
            is_reply: ev.is_reply == 1,
            match_type: MatchType::from_code(ev.match_type),
            policy_key,
            dns,
        }
    }
}
