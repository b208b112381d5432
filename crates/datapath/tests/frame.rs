//! The frame parser: built frames parse back to their packet; frames cut short, fragments
//! and unknown shapes get Cilium's drop reasons; nothing panics.

use std::net::IpAddr;

use fqdnpath_datapath::conntrack::TcpFlags;
use fqdnpath_datapath::frame::{Parsed, build_frame, parse_frame};
use fqdnpath_datapath::{PROTO_TCP, PROTO_UDP, Packet};
use fqdnpath_policy::policymap::DropReason;
use proptest::prelude::*;

fn packet(v6: bool, proto: u8, sport: u16, dport: u16, flags: TcpFlags) -> Packet {
    let (src, dst): (IpAddr, IpAddr) = if v6 {
        ("fd00::1".parse().unwrap(), "2001:db8::7".parse().unwrap())
    } else {
        ("10.0.0.1".parse().unwrap(), "192.0.2.7".parse().unwrap())
    };
    Packet {
        src,
        dst,
        proto,
        sport,
        dport,
        flags,
    }
}

proptest! {
    #[test]
    fn built_frames_parse_back(
        v6 in any::<bool>(),
        proto in prop::sample::select(&[PROTO_TCP, PROTO_UDP, 132, 1, 58, 47][..]),
        sport in any::<u16>(),
        dport in any::<u16>(),
        (syn, fin, rst) in any::<(bool, bool, bool)>(),
        payload in 0usize..64,
    ) {
        let has_ports = matches!(proto, PROTO_TCP | PROTO_UDP | 132);
        let flags = if proto == PROTO_TCP { TcpFlags { syn, fin, rst } } else { TcpFlags::default() };
        let p = packet(v6, proto, sport, dport, flags);
        let want = if has_ports { p } else { Packet { sport: 0, dport: 0, ..p } };
        prop_assert_eq!(parse_frame(&build_frame(&p, payload)), Parsed::Ip(want));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_ip_frames_without_ports_are_not_judged_with_ports(
        bytes in prop::collection::vec(any::<u8>(), 0..128),
    ) {
        if let Parsed::Ip(p) = parse_frame(&bytes)
            && !matches!(p.proto, PROTO_TCP | PROTO_UDP | 132)
        {
            prop_assert_eq!((p.sport, p.dport), (0, 0));
        }
    }
}

#[test]
fn frames_cut_short_are_dropped_with_the_reason_of_the_header_they_cut() {
    let tcp = build_frame(&packet(false, PROTO_TCP, 1, 443, TcpFlags::default()), 0);
    for len in 0..tcp.len() {
        let want = match len {
            0..=33 => DropReason::InvalidPacket,
            34..=47 => DropReason::CtTruncatedOrInvalidHeader,
            _ => continue,
        };
        let Parsed::Invalid { reason, .. } = parse_frame(&tcp[..len]) else {
            panic!("{len} bytes parsed");
        };
        assert_eq!(reason, want, "{len} bytes");
    }
    // TCP needs its flags byte (14 bytes); UDP only its ports (4).
    assert!(matches!(parse_frame(&tcp[..48]), Parsed::Ip(_)));
    let udp = build_frame(&packet(true, PROTO_UDP, 1, 53, TcpFlags::default()), 0);
    assert!(matches!(parse_frame(&udp[..58]), Parsed::Ip(_)));
    assert!(matches!(
        parse_frame(&udp[..57]),
        Parsed::Invalid {
            reason: DropReason::CtTruncatedOrInvalidHeader,
            ..
        }
    ));
    assert!(matches!(
        parse_frame(&udp[..53]),
        Parsed::Invalid {
            reason: DropReason::InvalidPacket,
            ..
        }
    ));
}

#[test]
fn ipv6_fragments_after_the_first_are_dropped_and_the_first_is_judged() {
    let udp = build_frame(&packet(true, PROTO_UDP, 1, 53, TcpFlags::default()), 0);
    let with_fragment = |offset_units: u16| {
        let mut f = udp[..54].to_vec();
        f[14 + 6] = 44;
        let off = (offset_units << 3).to_be_bytes();
        f.extend_from_slice(&[PROTO_UDP, 0, off[0], off[1] | 1, 0, 0, 0, 7]);
        f.extend_from_slice(&udp[54..]);
        f
    };
    let Parsed::Ip(first) = parse_frame(&with_fragment(0)) else {
        panic!("the first fragment carries the ports")
    };
    assert_eq!(first.dport, 53);
    assert!(matches!(
        parse_frame(&with_fragment(185)),
        Parsed::Invalid {
            reason: DropReason::IpFragmentationNotSupported,
            ..
        }
    ));
}
