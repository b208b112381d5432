//! The FQDN cache's memory at issue 6's target scale: 100k names with 10 IPs each, 1M cached
//! (name, IP) pairs, must stay resident in at most 200 MB.
//!
//! Fills one `DnsCache` through its public API (every IP distinct, so the reverse map holds
//! 1M addresses: the worst case), and reads the process's own resident set size from
//! `/proc/self/status` before and after: `VmRSS` (resident now) and `VmHWM` (the peak, which
//! also counts the hash tables' transient copies while they grow). Exits 1 when the resident
//! growth exceeds the budget. Linux only.
//!
//! Run: `cargo run --release --example memory` (an optional argument scales the name count).

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;

use fqdnpath::cache::{DnsCache, Fqdn, Timestamp};

const NAMES: u32 = 100_000;
const IPS_PER_NAME: u32 = 10;
const BUDGET_MB: f64 = 200.0;

/// A field of `/proc/self/status` (`VmRSS`, `VmHWM`), in kB.
fn status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// kB (of 1024 bytes, as the kernel counts them) in MB of 10^6 bytes.
#[expect(clippy::cast_precision_loss, reason = "kB counts far below 2^52")]
fn mb(kb: u64) -> f64 {
    kb as f64 * 1024.0 / 1e6
}

fn main() -> ExitCode {
    let names = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(NAMES);
    let (Some(rss_before), Some(hwm_before)) = (status_kb("VmRSS"), status_kb("VmHWM")) else {
        eprintln!("no VmRSS/VmHWM in /proc/self/status: this example needs Linux");
        return ExitCode::from(2);
    };
    let mut cache = DnsCache::default();
    let now = Timestamp::from_secs(1);
    for n in 0..names {
        // Built here, not beforehand, so that the name's only owner is the cache.
        let name = Fqdn::new(&format!("svc-{n}.example.com"));
        let mut ips = [IpAddr::V4(Ipv4Addr::UNSPECIFIED); IPS_PER_NAME as usize];
        for (k, ip) in (0..IPS_PER_NAME).zip(ips.iter_mut()) {
            // 10.0.0.0/8 upwards, one address per pair.
            *ip = IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + n * IPS_PER_NAME + k));
        }
        let outcome = cache.update(now, &name, &ips, 300);
        assert_eq!(outcome.added.len(), ips.len(), "every pair is new");
    }
    let (Some(rss_after), Some(hwm_after)) = (status_kb("VmRSS"), status_kb("VmHWM")) else {
        eprintln!("no VmRSS/VmHWM in /proc/self/status");
        return ExitCode::from(2);
    };
    assert_eq!(cache.len(), (names * IPS_PER_NAME) as usize);
    assert_eq!(cache.name_count(), names as usize);

    let delta = mb(rss_after.saturating_sub(rss_before));
    println!(
        "DnsCache: {} names, {} (name, IP) pairs, {} distinct IPs",
        cache.name_count(),
        cache.len(),
        cache.len()
    );
    println!(
        "VmRSS: {:.1} MB before, {:.1} MB after, delta {delta:.1} MB ({:.0} bytes per pair)",
        mb(rss_before),
        mb(rss_after),
        delta * 1e6 / f64::from(names * IPS_PER_NAME)
    );
    println!(
        "VmHWM: {:.1} MB before, {:.1} MB after, delta {:.1} MB (the peak, with growing tables)",
        mb(hwm_before),
        mb(hwm_after),
        mb(hwm_after.saturating_sub(hwm_before))
    );
    // Keep the cache alive until after the measurement.
    drop(cache);
    if delta > BUDGET_MB * f64::from(names) / f64::from(NAMES) {
        println!("over budget: at most {BUDGET_MB} MB for 100k names and 1M pairs");
        return ExitCode::FAILURE;
    }
    println!("within budget ({BUDGET_MB} MB for 100k names and 1M pairs)");
    ExitCode::SUCCESS
}
