//! The node's clock: `CLOCK_MONOTONIC`, which the eBPF program reads (`bpf_ktime_get_ns()`)
//! to stamp its flow events and to age its conntrack entries. The agent is given this time as
//! its `now`, so that its cache, the kernel's conntrack and the flow events share one
//! timeline.

use fqdnpath_cache::Timestamp;

/// The current `CLOCK_MONOTONIC` time.
pub fn now() -> Timestamp {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(t.tv_nsec).unwrap_or(0);
    Timestamp::from_nanos(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

#[cfg(test)]
mod tests {
    use super::now;

    #[test]
    fn the_clock_does_not_go_back() {
        let a = now();
        let b = now();
        assert!(b >= a);
        assert!(a.as_nanos() > 0);
    }
}
