//! Judging frames through `BPF_PROG_TEST_RUN`: the program runs on a frame in the kernel,
//! without an interface, and its return value and flow event are checked against each other.
//! This is how the [`Datapath`](fqdnpath_datapath::Datapath) methods ask the kernel (and so
//! how the differential tests compare it with the model); when the kernel cannot be asked,
//! the packet is dropped (fail closed).
//!
//! With the `test-support` feature, the raw runs are public too: a program's return value and
//! raw event, the mark it leaves, and its time per run (the kernel bench).

use fqdnpath_datapath::abi::{self, FlowEventAbi};
use fqdnpath_datapath::frame::{Parsed, build_frame, parse_frame};
use fqdnpath_datapath::{FlowEvent, Packet};
use fqdnpath_names::Timestamp;
use fqdnpath_policy::policymap::DropReason;

use aya::programs::{TestRun as _, TestRunOptions};

use crate::datapath::KernelDatapath;
use crate::error::{KernelError, prog_err};
use crate::load::{PROG_EGRESS, PROG_INGRESS, classifier};

/// `TC_ACT_SHOT`: the program dropped the packet.
const TC_ACT_SHOT: u32 = 2;

impl KernelDatapath {
    /// Runs `program` on `frame` through `BPF_PROG_TEST_RUN`: the verdict as the program
    /// returns it (`TC_ACT_SHOT` = dropped) and the flow event it emitted (`None` for a frame
    /// passed unjudged, ARP).
    fn run(
        &mut self,
        program: &'static str,
        frame: &[u8],
        now: Timestamp,
    ) -> Result<(bool, Option<FlowEventAbi>), KernelError> {
        self.set_now(now)?;
        // Whatever is already in the ring buffer is someone else's.
        self.drain_ring();
        let prog = classifier(&mut self.ebpf, program)?;
        let result = prog
            .test_run(TestRunOptions {
                data_in: Some(frame),
                ..TestRunOptions::default()
            })
            .map_err(prog_err("test run", program))?;
        let dropped = result.return_value == TC_ACT_SHOT;
        let event = self
            .events
            .next()
            .and_then(|item| FlowEventAbi::from_bytes(&item));
        if let Some(ev) = &event {
            let event_dropped = ev.verdict == abi::VERDICT_DROPPED;
            if event_dropped != dropped {
                return Err(KernelError::Inconsistent {
                    program,
                    returned: result.return_value,
                    event_verdict: ev.verdict,
                });
            }
        }
        Ok((dropped, event))
    }

    /// Judges a frame with the egress or the ingress program; the event as the model's.
    /// `None`: passed unjudged.
    fn judge(
        &mut self,
        egress: bool,
        frame: &[u8],
        now: Timestamp,
    ) -> Result<Option<FlowEvent>, KernelError> {
        let program = if egress { PROG_EGRESS } else { PROG_INGRESS };
        let (dropped, event) = self.run(program, frame, now)?;
        match event {
            Some(ev) => Ok(Some(self.to_flow_event(&ev))),
            None if !dropped && matches!(parse_frame(frame), Parsed::Arp) => Ok(None),
            None => Err(KernelError::NoEvent {
                program,
                dropped,
                events_lost: self.counters().map_or(0, |c| c.events_lost),
            }),
        }
    }

    /// What the trait's judging methods return when the kernel could not be asked: the
    /// packet is dropped (fail closed).
    fn failed_event(packet: &Packet, now: Timestamp, egress: bool, e: &KernelError) -> FlowEvent {
        // Leave a trace: the trait's methods cannot return the error.
        eprintln!("fqdnpath-kernel: failing closed: {e}");
        fqdnpath_datapath::invalid_frame_event(packet, DropReason::PolicyDenied, egress, now)
    }

    /// A packet judged by the egress or ingress program, in the frame built from it; when the
    /// kernel cannot be asked, the packet is dropped (fail closed).
    pub(crate) fn judge_packet(
        &mut self,
        egress: bool,
        packet: &Packet,
        now: Timestamp,
    ) -> FlowEvent {
        match self.judge(egress, &build_frame(packet, 0), now) {
            Ok(Some(event)) => event,
            Ok(None) => unreachable!("a built frame is IP, never ARP"),
            Err(e) => Self::failed_event(packet, now, egress, &e),
        }
    }

    /// A frame judged by the egress or ingress program; when the kernel cannot be asked, the
    /// frame is dropped (fail closed), ARP aside.
    pub(crate) fn judge_frame(
        &mut self,
        egress: bool,
        frame: &[u8],
        now: Timestamp,
    ) -> Option<FlowEvent> {
        self.judge(egress, frame, now).unwrap_or_else(|e| {
            let packet = match parse_frame(frame) {
                Parsed::Ip(p) | Parsed::Invalid { partial: p, .. } => p,
                Parsed::Arp => return None,
            };
            Some(Self::failed_event(&packet, now, egress, &e))
        })
    }
}

/// The raw runs, for tests, benches and fuzzing.
#[cfg(feature = "test-support")]
impl KernelDatapath {
    /// The name of the egress program, for [`KernelDatapath::test_run`] and
    /// [`KernelDatapath::time_program`].
    pub const EGRESS: &'static str = PROG_EGRESS;
    /// The name of the ingress program.
    pub const INGRESS: &'static str = PROG_INGRESS;

    /// Runs `program` on `frame` through `BPF_PROG_TEST_RUN`: the verdict as the program
    /// returns it (`TC_ACT_SHOT` = dropped) and the flow event it emitted (`None` for a frame
    /// passed unjudged, ARP).
    pub fn test_run(
        &mut self,
        program: &'static str,
        frame: &[u8],
        now: Timestamp,
    ) -> Result<(bool, Option<FlowEventAbi>), KernelError> {
        self.run(program, frame, now)
    }

    /// A kernel event as the model's flow event.
    pub fn flow_event(&self, ev: &FlowEventAbi) -> FlowEvent {
        self.to_flow_event(ev)
    }

    /// Runs the egress program on `frame` and returns the `skb->mark` it left: for a packet
    /// redirected to the DNS proxy, [`abi::MARK_MAGIC_TO_PROXY`] with the proxy port in the
    /// upper 16 bits (Cilium's tproxy mark); otherwise 0. The event is discarded.
    pub fn egress_mark(&mut self, frame: &[u8], now: Timestamp) -> Result<u32, KernelError> {
        self.set_now(now)?;
        self.drain_ring();
        // struct __sk_buff: len, pkt_type, then mark at offset 8.
        let mut ctx = [0u8; 192];
        let prog = classifier(&mut self.ebpf, PROG_EGRESS)?;
        prog.test_run(TestRunOptions {
            data_in: Some(frame),
            ctx_out: Some(&mut ctx),
            ..TestRunOptions::default()
        })
        .map_err(prog_err("test run", PROG_EGRESS))?;
        while self.events.next().is_some() {}
        Ok(u32::from_ne_bytes([ctx[8], ctx[9], ctx[10], ctx[11]]))
    }

    /// Times `repeat` runs of `program` on `frame` in the kernel; returns the kernel's
    /// average duration per run. The events they emit are discarded.
    pub fn time_program(
        &mut self,
        program: &'static str,
        frame: &[u8],
        repeat: u32,
    ) -> Result<std::time::Duration, KernelError> {
        let prog = classifier(&mut self.ebpf, program)?;
        let result = prog
            .test_run(TestRunOptions {
                data_in: Some(frame),
                repeat,
                ..TestRunOptions::default()
            })
            .map_err(prog_err("test run", program))?;
        while self.events.next().is_some() {}
        Ok(result.duration)
    }
}
