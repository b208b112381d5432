//! Conntrack lifetimes: every (protocol, state) pair renews to Cilium's default for it.

use std::net::IpAddr;
use std::time::Duration;

use fqdnpath_datapath::conntrack::{
    ANY_LIFETIME, Conntrack, Direction, TCP_CLOSE_LIFETIME, TCP_ESTABLISHED_LIFETIME,
    TCP_SYN_LIFETIME, TcpFlags, Tuple,
};
use fqdnpath_datapath::{PROTO_TCP, PROTO_UDP};
use fqdnpath_names::{EndpointId, Timestamp};
use fqdnpath_policy::identity::Identity;

fn flow(proto: u8, v6: bool) -> Tuple {
    let (src, dst): (IpAddr, IpAddr) = if v6 {
        ("fd00::1".parse().unwrap(), "2001:db8::7".parse().unwrap())
    } else {
        (
            "10.0.1.10".parse().unwrap(),
            "140.82.112.3".parse().unwrap(),
        )
    };
    Tuple {
        src,
        dst,
        sport: 41_000,
        dport: 443,
        proto,
    }
}

const FIN: TcpFlags = TcpFlags {
    syn: false,
    fin: true,
    rst: false,
};
const RST: TcpFlags = TcpFlags {
    syn: false,
    fin: false,
    rst: true,
};
const NONE: TcpFlags = TcpFlags {
    syn: false,
    fin: false,
    rst: false,
};

/// How long the flow lives after a packet at `at`: the last instant it is still live.
fn lifetime(ct: &Conntrack, tuple: &Tuple, at: Timestamp) -> Duration {
    let expires = ct.get(tuple, at).expect("live").expires;
    assert!(ct.get(tuple, expires).is_some());
    assert!(ct.get(tuple, expires + Duration::from_nanos(1)).is_none());
    Duration::from_nanos(expires.as_nanos() - at.as_nanos())
}

fn at(secs: u64) -> Timestamp {
    Timestamp::from_nanos(secs * 1_000_000_000)
}

/// Which way a packet of a flow goes.
#[derive(Clone, Copy)]
enum Way {
    /// In the opening direction: egress of endpoint 1, to identity 9.
    Out,
    /// The reply.
    Back,
}

/// Sends `packets` of the flow `tuple` through a fresh table, each `(way, flags, at, lifetime)`:
/// every one must be tracked, and leave the flow `lifetime` to live.
fn assert_lifetimes(tuple: Tuple, packets: &[(Way, TcpFlags, u64, Duration)]) {
    let mut ct = Conntrack::new(16);
    for &(way, flags, secs, want) in packets {
        let now = at(secs);
        let tracked = match way {
            Way::Out => ct.track(
                tuple,
                EndpointId(1),
                Direction::Egress,
                Identity(9),
                flags,
                now,
            ),
            Way::Back => ct.reply(&tuple, flags, now),
        };
        assert!(tracked, "at {secs} s");
        assert_eq!(lifetime(&ct, &tuple, now), want, "at {secs} s");
    }
}

#[test]
fn every_state_renews_to_its_own_lifetime() {
    for v6 in [false, true] {
        // TCP: opening, then established by a reply, then closing on a FIN. Closing stays
        // closing, whatever the next packet.
        let tcp = flow(PROTO_TCP, v6);
        assert_lifetimes(
            tcp,
            &[
                (Way::Out, NONE, 0, TCP_SYN_LIFETIME),
                (Way::Back, NONE, 1, TCP_ESTABLISHED_LIFETIME),
                (Way::Out, NONE, 2, TCP_ESTABLISHED_LIFETIME),
                (Way::Out, FIN, 3, TCP_CLOSE_LIFETIME),
                (Way::Back, NONE, 4, TCP_CLOSE_LIFETIME),
            ],
        );
        // A reset before the handshake completes: closing too.
        assert_lifetimes(tcp, &[(Way::Out, RST, 0, TCP_CLOSE_LIFETIME)]);
        // Anything else lives the same whatever its state and flags.
        assert_lifetimes(
            flow(PROTO_UDP, v6),
            &[
                (Way::Out, NONE, 0, ANY_LIFETIME),
                (Way::Back, NONE, 1, ANY_LIFETIME),
                (Way::Out, FIN, 2, ANY_LIFETIME),
            ],
        );
    }
}
