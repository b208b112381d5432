//! The demo's wall clock and its output lines: flow events in `hubble observe`'s compact
//! style, laid out as the simulator prints them (`fqdnpath run`), so that both read the same.
//! Self-contained on purpose: the `fqdnpath-hubble` crate is to replace it.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use fqdnpath_cache::Timestamp;
use fqdnpath_datapath::{FlowEvent, PROTO_TCP, PROTO_UDP, Verdict};
use fqdnpath_policy::policymap::{DropReason, MatchType};

use crate::clock::now;

/// Turns monotonic timestamps ([`now`], the clock of the eBPF program's flow events) into
/// wall-clock time (UTC), as Hubble prints it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WallClock {
    /// Wall-clock nanoseconds since the Unix epoch minus monotonic nanoseconds.
    offset: i128,
}

impl WallClock {
    /// The offset between the two clocks, read now.
    pub(crate) fn new() -> Self {
        let mono = i128::from(now().as_nanos());
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(0));
        Self {
            offset: wall - mono,
        }
    }

    /// `Nov 29 16:00:00.123`.
    pub(crate) fn format(self, t: Timestamp) -> String {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let wall = u128::try_from(i128::from(t.as_nanos()) + self.offset).unwrap_or(0);
        let millis = (wall / 1_000_000) % 1000;
        let secs = u64::try_from(wall / 1_000_000_000).unwrap_or(0);
        let (month, day) = month_day(secs / 86_400);
        let in_day = secs % 86_400;
        format!(
            "{} {day:02} {:02}:{:02}:{:02}.{millis:03}",
            MONTHS[month],
            in_day / 3600,
            (in_day / 60) % 60,
            in_day % 60
        )
    }
}

/// The month (0-based) and day of the month of `days` days after 1970-01-01.
fn month_day(mut days: u64) -> (usize, u64) {
    let leap = |y: u64| y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400));
    let mut year = 1970;
    while days >= if leap(year) { 366 } else { 365 } {
        days -= if leap(year) { 366 } else { 365 };
        year += 1;
    }
    let lengths = [
        31,
        if leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    for (month, len) in lengths.into_iter().enumerate() {
        if days < len {
            return (month, days + 1);
        }
        days -= len;
    }
    (11, 31)
}

/// Who is behind an address: pods by `namespace/name`, anything else by its address.
#[derive(Clone, Debug, Default)]
pub(crate) struct Names {
    pods: Vec<(IpAddr, String)>,
}

impl Names {
    /// Names `ip` as `pod` (`namespace/name`).
    pub(crate) fn add(&mut self, ip: IpAddr, pod: &str) {
        self.pods.push((ip, pod.to_owned()));
    }

    /// The pod at `ip`, or the address itself.
    pub(crate) fn describe(&self, ip: IpAddr) -> String {
        self.pods
            .iter()
            .find(|(a, _)| *a == ip)
            .map_or_else(|| ip.to_string(), |(_, name)| name.clone())
    }
}

/// The TCP flags as Hubble lists them. The event keeps SYN, FIN and RST; ACK is on every
/// segment of a connection but its opening SYN (and a bare RST), so it is written from that.
fn tcp_flags(event: &FlowEvent) -> String {
    let f = event.packet.flags;
    let opening = f.syn && !event.is_reply;
    let mut flags = Vec::new();
    if f.syn {
        flags.push("SYN");
    }
    if !opening && !f.rst {
        flags.push("ACK");
    }
    if f.fin {
        flags.push("FIN");
    }
    if f.rst {
        flags.push("RST");
    }
    flags.join(", ")
}

/// One flow event as a line: time, source, destination, identities, then the verdict.
pub(crate) fn flow_line(event: &FlowEvent, clock: WallClock, names: &Names) -> String {
    let p = &event.packet;
    let proto = match p.proto {
        PROTO_TCP => format!("TCP Flags: {}", tcp_flags(event)),
        PROTO_UDP => "UDP".to_owned(),
        other => format!("protocol {other}"),
    };
    let direction = if event.egress { "EGRESS" } else { "INGRESS" };
    let verdict = match event.verdict {
        Verdict::Dropped => {
            let reason = match event.drop_reason {
                Some(DropReason::PolicyDenied) | None => "Policy denied",
                Some(DropReason::PolicyDeny) => "Policy denied by denylist",
                Some(other) => other.desc(),
            };
            format!(
                "policy-verdict:{} {direction} DENIED ({proto}) DROPPED ({reason})",
                MatchType::verdict_label(event.match_type)
            )
        }
        Verdict::Forwarded if event.is_reply || !event.egress => {
            format!("to-endpoint FORWARDED ({proto})")
        }
        Verdict::Forwarded => format!(
            "policy-verdict:{} EGRESS ALLOWED ({proto}) FORWARDED",
            MatchType::verdict_label(event.match_type)
        ),
        Verdict::Redirected => format!(
            "policy-verdict:{} EGRESS ALLOWED ({proto}) REDIRECTED (to-proxy)",
            MatchType::verdict_label(event.match_type)
        ),
    };
    format!(
        "{} {}:{} (ID:{}) -> {}:{} (ID:{}) {verdict}",
        clock.format(event.time),
        names.describe(p.src),
        p.sport,
        event.src_identity,
        names.describe(p.dst),
        p.dport,
        event.dst_identity,
    )
}

#[cfg(test)]
mod tests {
    use super::month_day;

    #[test]
    fn civil_dates() {
        assert_eq!(month_day(0), (0, 1));
        assert_eq!(month_day(59), (2, 1)); // 1970-03-01
        assert_eq!(month_day(19_782), (1, 29)); // 2024-02-29
        assert_eq!(month_day(20_786), (10, 29)); // 2026-11-29
    }
}
