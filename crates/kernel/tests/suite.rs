//! The kernel backend's tests beside the shared ones: the datapath conformance suite
//! (`fqdnpath_datapath::conformance`, which the reference model runs in its own crate) against
//! `KernelDatapath` with the virtual clock; the known, documented differences between the
//! kernel and the model, each shown by a test; and kernel-only behaviour (counters, flow events
//! from the ring buffer, the proxy mark). Every test needs root and clang, and skips with one
//! line elsewhere.

use fqdnpath_datapath::conformance::{self, Factory, t, tcp};
use fqdnpath_datapath::frame::build_frame;
use fqdnpath_datapath::{Datapath, MapSizes, PROTO_UDP, Packet, ReferenceDatapath, Verdict};
use fqdnpath_kernel::{Clock, KernelDatapath, kernel_tests_enabled};
use fqdnpath_policy::compile::{Compiler, Delta, Prefix};
use fqdnpath_policy::identity::Identity;
use fqdnpath_policy::policymap::DropReason;

fn kernel_factory(case: &str) -> Option<Box<Factory<'static>>> {
    if !kernel_tests_enabled(case) {
        return None;
    }
    Some(Box::new(|sizes| {
        Box::new(KernelDatapath::load(sizes, Clock::Virtual).unwrap()) as Box<dyn Datapath>
    }))
}

fqdnpath_datapath::conformance_suite!(kernel_factory);

/// Known difference: conntrack is an LRU hash in the kernel, as in Cilium, so a full table
/// evicts an old flow to track a new one; the model refuses the new flow
/// (`CT_MAP_INSERTION_FAILED`). Both fail closed in the sense that matters: no untracked flow
/// is forwarded by the model, and the kernel forwards only flows it tracks.
#[test]
fn known_difference_a_full_conntrack_evicts_in_the_kernel_and_refuses_in_the_model() {
    if !kernel_tests_enabled("known_difference_a_full_conntrack") {
        return;
    }
    let sizes = MapSizes {
        conntrack: 4,
        ..MapSizes::default()
    };
    let compiler = conformance::compiler();
    let mut model = ReferenceDatapath::new(sizes);
    model.program(&compiler, &|_| true).unwrap();
    let mut kernel = KernelDatapath::load(sizes, Clock::Virtual).unwrap();
    kernel.program(&compiler, &|_| true).unwrap();
    // DNS to kube-dns is allowed (redirected) and tracked: five flows into four entries.
    let dns = |sport| Packet {
        proto: PROTO_UDP,
        ..tcp("10.0.1.10", "10.0.2.53", sport, 53)
    };
    for sport in 40_000..40_004 {
        assert_eq!(model.egress(&dns(sport), t(0)).verdict, Verdict::Redirected);
        assert_eq!(
            kernel.egress(&dns(sport), t(0)).verdict,
            Verdict::Redirected
        );
    }
    let fifth = model.egress(&dns(40_004), t(0));
    assert_eq!(
        (fifth.verdict, fifth.drop_reason),
        (Verdict::Dropped, Some(DropReason::CtMapInsertionFailed))
    );
    let fifth = kernel.egress(&dns(40_004), t(0));
    assert_eq!(
        (fifth.verdict, fifth.drop_reason),
        (Verdict::Redirected, None)
    );
    assert!(kernel.capacity().conntrack.used <= 4);
}

/// Known difference: `BPF_PROG_TEST_RUN` refuses an IP frame shorter than its fixed IP header,
/// so judging such a frame through the trait fails closed (`DROPPED`, `POLICY_DENIED`) where
/// the model says `INVALID_PACKET_DROPPED`. On a real interface the program sees the frame
/// and drops it as the model does.
#[test]
fn known_difference_a_frame_cut_inside_the_ip_header_fails_closed_under_test_run() {
    if !kernel_tests_enabled("known_difference_a_frame_cut_inside_the_ip_header") {
        return;
    }
    let compiler = conformance::compiler();
    let mut model = ReferenceDatapath::new(MapSizes::default());
    model.program(&compiler, &|_| true).unwrap();
    let mut kernel = KernelDatapath::load(MapSizes::default(), Clock::Virtual).unwrap();
    kernel.program(&compiler, &|_| true).unwrap();
    let dns = Packet {
        proto: PROTO_UDP,
        ..tcp("10.0.1.10", "10.0.2.53", 40000, 53)
    };
    let frame = build_frame(&dns, 0);
    let short = &frame[..14 + 12];
    let by_model = model.egress_frame(short, t(0)).unwrap();
    assert_eq!(
        (by_model.verdict, by_model.drop_reason),
        (Verdict::Dropped, Some(DropReason::InvalidPacket))
    );
    let by_kernel = kernel.egress_frame(short, t(0)).unwrap();
    assert_eq!(
        (by_kernel.verdict, by_kernel.drop_reason),
        (Verdict::Dropped, Some(DropReason::PolicyDenied))
    );
}

fn kernel(test: &str) -> Option<(Compiler, KernelDatapath)> {
    if !kernel_tests_enabled(test) {
        return None;
    }
    let compiler = conformance::compiler();
    let mut dp = KernelDatapath::load(MapSizes::default(), Clock::Virtual).unwrap();
    dp.program(&compiler, &|_| true).unwrap();
    Some((compiler, dp))
}

#[test]
fn kernel_counters_count_verdicts() {
    let Some((_, mut dp)) = kernel("kernel_counters") else {
        return;
    };
    let before = dp.counters().unwrap();
    let dns = Packet {
        proto: PROTO_UDP,
        ..tcp("10.0.1.10", "10.0.2.53", 40000, 53)
    };
    dp.egress(&dns, t(0));
    dp.egress(&tcp("10.0.1.10", "8.8.8.8", 1, 443), t(0));
    dp.egress(&tcp("10.0.1.10", "8.8.8.8", 2, 443), t(0));
    let after = dp.counters().unwrap();
    assert_eq!(after.redirected - before.redirected, 1);
    assert_eq!(after.dropped - before.dropped, 2);
    assert_eq!(after.events_lost, 0);
}

#[test]
fn kernel_events_carry_the_redirect_mark_and_the_virtual_time() {
    let Some((_, mut dp)) = kernel("kernel_events") else {
        return;
    };
    let dns = Packet {
        proto: PROTO_UDP,
        ..tcp("10.0.1.10", "10.0.2.53", 40000, 53)
    };
    let frame = build_frame(&dns, 0);
    let (dropped, event) = dp.test_run(KernelDatapath::EGRESS, &frame, t(42)).unwrap();
    let event = event.unwrap();
    assert!(!dropped);
    assert_eq!(event.ts_ns, 42_000_000_000);
    assert_eq!(event.verdict, fqdnpath_datapath::abi::VERDICT_REDIRECTED);
    // Nothing else was emitted.
    assert!(dp.events().is_empty());
    // The redirect marks the packet for the proxy, as Cilium's tproxy mark does.
    let mark = dp.egress_mark(&frame, t(43)).unwrap();
    assert_eq!(
        mark,
        fqdnpath_datapath::abi::MARK_MAGIC_TO_PROXY
            | (u32::from(fqdnpath_datapath::abi::DNS_PROXY_PORT) << 16)
    );
    let https = build_frame(&tcp("10.0.1.10", "8.8.8.8", 1, 443), 0);
    assert_eq!(dp.egress_mark(&https, t(43)).unwrap(), 0);
}

#[test]
fn kernel_bench_baseline_finds_the_identities_of_its_hash() {
    let Some((_, mut dp)) = kernel("kernel_bench_baseline") else {
        return;
    };
    let learned = Identity(16_777_300);
    dp.apply(&[Delta::IpcacheUpsert {
        prefix: Prefix::host("192.0.2.7".parse().unwrap()),
        identity: learned,
    }])
    .unwrap();
    // The baseline copies the datapath's IPv4 ipcache when it loads.
    let mut bare = fqdnpath_kernel::Baseline::load(&dp).unwrap();
    bare.fill_hash(learned).unwrap();
    let to_learned = build_frame(&tcp("10.0.1.10", "192.0.2.7", 1, 443), 0);
    let to_world = build_frame(&tcp("10.0.1.10", "192.0.2.8", 1, 443), 0);
    assert!(!bare.test_run(&to_learned).unwrap());
    assert!(bare.test_run(&to_world).unwrap());
    bare.time(&to_learned, 16).unwrap();
}
