//! The demo's flows print as the demo printed them before `fqdnpath-hubble` did (flags in
//! Hubble's order), and the wall clock lands on the right day.

use std::net::{IpAddr, Ipv4Addr};

use fqdnpath_cache::{Fqdn, Observation, Timestamp};
use fqdnpath_datapath::conntrack::TcpFlags;
use fqdnpath_datapath::{FlowEvent, PROTO_TCP, PROTO_UDP, Packet, Verdict};
use fqdnpath_hubble::compact;
use fqdnpath_policy::identity::Identity;
use fqdnpath_policy::policymap::{DropReason, MatchType};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use super::{Names, WallClock, dns_response, flow};

const DAY_NS: u64 = 86_400 * 1_000_000_000;
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 201, 0, 10));
const PROXY: IpAddr = IpAddr::V4(Ipv4Addr::new(169, 254, 20, 10));
const APP: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10));
/// 2026-11-29T16:00:00.123Z, days and nanoseconds since the epoch.
const AT: u64 = 20_786 * DAY_NS + 16 * 3_600_000_000_000 + 123_000_000;

/// A clock on which monotonic time is time since the Unix epoch.
fn epoch_clock() -> WallClock {
    WallClock { offset: 0 }
}

fn names() -> Names {
    let mut names = Names::default();
    names.add(CLIENT, "default/client");
    names.add(PROXY, "kube-system/node-local-dns");
    names
}

fn flags(syn: bool, fin: bool, rst: bool) -> TcpFlags {
    TcpFlags { syn, fin, rst }
}

/// An egress TCP packet from the client to app.demo.test's address, forwarded by an L3-L4
/// entry; its reply with `reply`.
fn event(flags: TcpFlags, reply: bool) -> FlowEvent {
    let (src, dst, sport, dport) = if reply {
        (APP, CLIENT, 8080, 49432)
    } else {
        (CLIENT, APP, 49432, 8080)
    };
    FlowEvent {
        time: Timestamp::from_nanos(AT),
        verdict: Verdict::Forwarded,
        drop_reason: None,
        egress: !reply,
        endpoint: None,
        packet: Packet {
            src,
            dst,
            proto: PROTO_TCP,
            sport,
            dport,
            flags,
        },
        src_identity: if reply {
            Identity(16_777_217)
        } else {
            Identity(256)
        },
        dst_identity: if reply {
            Identity(256)
        } else {
            Identity(16_777_217)
        },
        is_reply: reply,
        match_type: (!reply).then_some(MatchType::L3L4),
        policy_key: None,
        dns: None,
    }
}

fn line(event: &FlowEvent) -> String {
    let clock = epoch_clock();
    compact(&flow(event, clock.time(event.time), &names())).to_string()
}

#[test]
fn the_wall_clock_lands_on_the_calendar_day() {
    let clock = epoch_clock();
    let stamp = |days: u64| {
        clock
            .time(Timestamp::from_nanos(days * DAY_NS))
            .stamp_milli()
            .to_string()
    };
    assert_eq!(stamp(0), "Jan 01 00:00:00.000");
    assert_eq!(stamp(59), "Mar 01 00:00:00.000"); // 1970-03-01
    assert_eq!(stamp(19_782), "Feb 29 00:00:00.000"); // 2024-02-29
    assert_eq!(stamp(20_786), "Nov 29 00:00:00.000"); // 2026-11-29
    let late = WallClock {
        offset: i128::from(AT),
    };
    assert_eq!(
        late.time(Timestamp::from_nanos(1_000_000)).as_str(),
        "2026-11-29T16:00:00.124000000Z"
    );
}

#[test]
fn a_connection_prints_its_flags_as_hubble_lists_them() {
    let ends = "Nov 29 16:00:00.123 default/client:49432 (ID:256) -> 198.51.100.10:8080 \
                (ID:16777217)";
    let back = "Nov 29 16:00:00.123 198.51.100.10:8080 (ID:16777217) -> default/client:49432 \
                (ID:256)";
    let egress = |listed| {
        format!("{ends} policy-verdict:L3-L4 EGRESS ALLOWED (TCP Flags: {listed}) FORWARDED")
    };
    let reply = |listed| format!("{back} to-endpoint FORWARDED (TCP Flags: {listed})");
    // (SYN, FIN, RST), whether the packet is the reply, and its line.
    for ((syn, fin, rst), is_reply, want) in [
        ((true, false, false), false, egress("SYN")),
        ((true, false, false), true, reply("SYN, ACK")),
        ((false, false, false), false, egress("ACK")),
        ((false, true, false), true, reply("ACK, FIN")),
        // A bare RST carries no ACK; RST comes before FIN in Hubble's order.
        ((false, false, true), false, egress("RST")),
        ((false, true, true), true, reply("RST, FIN")),
    ] {
        assert_eq!(line(&event(flags(syn, fin, rst), is_reply)), want);
    }
}

#[test]
fn a_drop_prints_its_reason_in_ciliums_words() {
    let drop = |reason: Option<DropReason>| {
        let mut e = event(flags(true, false, false), false);
        e.verdict = Verdict::Dropped;
        e.drop_reason = reason;
        e.match_type = None;
        e.dst_identity = Identity::WORLD;
        line(&e)
    };
    let head = "Nov 29 16:00:00.123 default/client:49432 (ID:256) -> 198.51.100.10:8080 (ID:2) \
                policy-verdict:none EGRESS DENIED (TCP Flags: SYN) DROPPED";
    for (reason, words) in [
        (Some(DropReason::PolicyDenied), "Policy denied"),
        (None, "Policy denied"),
        (Some(DropReason::PolicyDeny), "Policy denied by denylist"),
        (
            Some(DropReason::CtMapInsertionFailed),
            "CT: Map insertion failed",
        ),
    ] {
        assert_eq!(drop(reason), format!("{head} ({words})"));
    }
}

#[test]
fn a_redirected_query_names_both_pods() {
    let mut e = event(flags(false, false, false), false);
    e.verdict = Verdict::Redirected;
    e.packet = Packet {
        src: CLIENT,
        dst: PROXY,
        proto: PROTO_UDP,
        sport: 57847,
        dport: 53,
        flags: TcpFlags::default(),
    };
    e.dst_identity = Identity(257);
    assert_eq!(
        line(&e),
        "Nov 29 16:00:00.123 default/client:57847 (ID:256) -> kube-system/node-local-dns:53 \
         (ID:257) policy-verdict:L3-L4 EGRESS ALLOWED (UDP) REDIRECTED (to-proxy)"
    );
}

#[test]
fn the_clients_answers_print_as_dns_responses() {
    let answer = |qname: &str, rcode, addresses: Vec<IpAddr>| Observation {
        id: 0x1d01,
        qname: Fqdn::new(qname),
        qtype: RecordType::A,
        rcode,
        addresses,
        ttl: 3,
        cnames: Vec::new(),
        answer_types: Vec::new(),
    };
    let print = |o: &Observation| {
        let time = epoch_clock().time(Timestamp::from_nanos(AT));
        compact(&dns_response(o, PROXY, CLIENT, time, &names())).to_string()
    };
    assert_eq!(
        print(&answer("app.demo.test.", ResponseCode::NoError, vec![APP])),
        "Nov 29 16:00:00.123 default/client dns-response app.demo.test. A NOERROR \
         [198.51.100.10]"
    );
    assert_eq!(
        print(&answer("evil.example.org.", ResponseCode::Refused, vec![])),
        "Nov 29 16:00:00.123 default/client dns-response evil.example.org. A REFUSED []"
    );
}

#[test]
fn names_describe_pods_and_addresses() {
    let names = names();
    assert_eq!(names.describe(CLIENT), "default/client");
    assert_eq!(names.describe(APP), "198.51.100.10");
}
