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

/// Tracks an egress packet of endpoint 1 to identity 9; `false` if the table is full.
fn egress(ct: &mut Conntrack, tuple: Tuple, flags: TcpFlags, at: Timestamp) -> bool {
    ct.track(
        tuple,
        EndpointId(1),
        Direction::Egress,
        Identity(9),
        flags,
        at,
    )
}

fn at(secs: u64) -> Timestamp {
    Timestamp::from_nanos(secs * 1_000_000_000)
}

#[test]
fn every_state_renews_to_its_own_lifetime() {
    for v6 in [false, true] {
        // TCP: opening, then established by a reply, then closing on a FIN.
        let mut ct = Conntrack::new(16);
        let tcp = flow(PROTO_TCP, v6);
        assert!(egress(&mut ct, tcp, NONE, at(0)));
        assert_eq!(lifetime(&ct, &tcp, at(0)), TCP_SYN_LIFETIME);
        assert!(ct.reply(&tcp, NONE, at(1)));
        assert_eq!(lifetime(&ct, &tcp, at(1)), TCP_ESTABLISHED_LIFETIME);
        assert!(egress(&mut ct, tcp, NONE, at(2)));
        assert_eq!(lifetime(&ct, &tcp, at(2)), TCP_ESTABLISHED_LIFETIME);
        assert!(egress(&mut ct, tcp, FIN, at(3)));
        assert_eq!(lifetime(&ct, &tcp, at(3)), TCP_CLOSE_LIFETIME);
        // Closing stays closing, whatever the next packet.
        assert!(ct.reply(&tcp, NONE, at(4)));
        assert_eq!(lifetime(&ct, &tcp, at(4)), TCP_CLOSE_LIFETIME);

        // A reset before the handshake completes: closing too.
        let mut ct = Conntrack::new(16);
        assert!(egress(&mut ct, tcp, RST, at(0)));
        assert_eq!(lifetime(&ct, &tcp, at(0)), TCP_CLOSE_LIFETIME);

        // Anything else lives the same whatever its state and flags.
        let mut ct = Conntrack::new(16);
        let udp = flow(PROTO_UDP, v6);
        assert!(egress(&mut ct, udp, NONE, at(0)));
        assert_eq!(lifetime(&ct, &udp, at(0)), ANY_LIFETIME);
        assert!(ct.reply(&udp, NONE, at(1)));
        assert_eq!(lifetime(&ct, &udp, at(1)), ANY_LIFETIME);
        assert!(egress(&mut ct, udp, FIN, at(2)));
        assert_eq!(lifetime(&ct, &udp, at(2)), ANY_LIFETIME);
    }
}
