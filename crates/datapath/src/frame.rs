//! Ethernet frames: how the datapath parses what arrives on the wire, and how test packets
//! are built.
//!
//! [`parse_frame`] is the model of the eBPF program's parser (`ebpf/fqdnpath.bpf.c`); the two
//! agree on every frame (the kernel backend's tests and fuzz target check it), and both follow
//! Cilium's choices and drop reasons:
//! - ARP passes unjudged; any other non-IP frame is dropped, `UNSUPPORTED_L3_PROTOCOL` (139);
//! - a frame too short for its Ethernet or IP header, or an IP header of the wrong version or
//!   an IPv4 header length under 20, is dropped, `INVALID_PACKET_DROPPED` (134);
//! - IPv4 options are skipped; IPv6 extension headers (hop-by-hop, routing, fragment,
//!   authentication, destination options) are walked, at most 4 as Cilium's
//!   `IPV6_MAX_HEADERS`; "no next header" or a fifth extension header is dropped,
//!   `INVALID_IPV6_EXTENSION_HEADER` (156);
//! - a fragment other than the first has no transport header: dropped,
//!   `IP_FRAGMENTATION_NOT_SUPPORTED` (157), as Cilium without fragment tracking;
//! - TCP needs its ports and flags (14 bytes), UDP and SCTP their ports (4 bytes), else the
//!   frame is dropped, `CT_TRUNCATED_OR_INVALID_HEADER` (135); other protocols are judged with
//!   port 0 (policy decides).
//!
//! The IP total length and checksums are not checked (Cilium's policy path does not either).

use std::net::{IpAddr, Ipv4Addr};

use fqdnpath_policy::policymap::{DropReason, PROTO_SCTP, PROTO_TCP, PROTO_UDP};

use crate::conntrack::TcpFlags;
use crate::packet::Packet;

/// `ETH_P_IP`.
pub const ETH_P_IP: u16 = 0x0800;
/// `ETH_P_IPV6`.
pub const ETH_P_IPV6: u16 = 0x86DD;
/// `ETH_P_ARP`.
pub const ETH_P_ARP: u16 = 0x0806;
/// Ethernet header length.
pub const ETH_HLEN: usize = 14;
/// Cilium's `IPV6_MAX_HEADERS`: extension headers walked before giving up.
pub const IPV6_MAX_HEADERS: usize = 4;

const NEXTHDR_HOP: u8 = 0;
const NEXTHDR_ROUTING: u8 = 43;
const NEXTHDR_FRAGMENT: u8 = 44;
const NEXTHDR_AUTH: u8 = 51;
const NEXTHDR_NONE: u8 = 59;
const NEXTHDR_DEST: u8 = 60;

const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_ACK: u8 = 0x10;

/// What a frame is, to the datapath.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// An IP packet to judge.
    Ip(Packet),
    /// ARP: passed unjudged, no flow event.
    Arp,
    /// Dropped before any lookup. `partial` holds what was read before the parser stopped
    /// (unspecified IPv4 addresses and zero ports when nothing was).
    Invalid {
        /// Cilium's drop reason.
        reason: DropReason,
        /// The fields read so far.
        partial: Packet,
    },
}

fn empty_packet() -> Packet {
    Packet {
        src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        proto: 0,
        sport: 0,
        dport: 0,
        flags: TcpFlags::default(),
    }
}

/// The TCP flags that matter to tracking, from the header's flags byte.
pub fn tcp_flags(byte: u8) -> TcpFlags {
    TcpFlags {
        syn: byte & TCP_SYN != 0,
        fin: byte & TCP_FIN != 0,
        rst: byte & TCP_RST != 0,
    }
}

/// The flags byte a built TCP segment carries: SYN, FIN, RST as given, ACK on anything but
/// a bare SYN.
pub fn tcp_flags_byte(flags: TcpFlags) -> u8 {
    let mut byte = 0;
    if flags.syn {
        byte |= TCP_SYN;
    } else {
        byte |= TCP_ACK;
    }
    if flags.fin {
        byte |= TCP_FIN;
    }
    if flags.rst {
        byte |= TCP_RST;
    }
    byte
}

/// Reads the transport header at `off` into `packet`.
fn parse_l4(frame: &[u8], off: usize, mut packet: Packet) -> Parsed {
    let need = match packet.proto {
        PROTO_TCP => 14,
        PROTO_UDP | PROTO_SCTP => 4,
        _ => return Parsed::Ip(packet),
    };
    let Some(l4) = off.checked_add(need).and_then(|end| frame.get(off..end)) else {
        return Parsed::Invalid {
            reason: DropReason::CtTruncatedOrInvalidHeader,
            partial: packet,
        };
    };
    packet.sport = u16::from_be_bytes([l4[0], l4[1]]);
    packet.dport = u16::from_be_bytes([l4[2], l4[3]]);
    if packet.proto == PROTO_TCP {
        packet.flags = tcp_flags(l4[13]);
    }
    Parsed::Ip(packet)
}

fn parse_ipv4(frame: &[u8]) -> Parsed {
    let invalid = |partial| Parsed::Invalid {
        reason: DropReason::InvalidPacket,
        partial,
    };
    let Some(ip) = frame.get(ETH_HLEN..ETH_HLEN + 20) else {
        return invalid(empty_packet());
    };
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ip[0] >> 4 != 4 || ihl < 20 {
        return invalid(empty_packet());
    }
    let packet = Packet {
        src: IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15])),
        dst: IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19])),
        proto: ip[9],
        ..empty_packet()
    };
    if (ip[6] & 0x1f) | ip[7] != 0 {
        return Parsed::Invalid {
            reason: DropReason::IpFragmentationNotSupported,
            partial: packet,
        };
    }
    parse_l4(frame, ETH_HLEN + ihl, packet)
}

fn is_extension(next: u8) -> bool {
    matches!(
        next,
        NEXTHDR_HOP
            | NEXTHDR_ROUTING
            | NEXTHDR_FRAGMENT
            | NEXTHDR_AUTH
            | NEXTHDR_NONE
            | NEXTHDR_DEST
    )
}

fn parse_ipv6(frame: &[u8]) -> Parsed {
    let Some(ip) = frame.get(ETH_HLEN..ETH_HLEN + 40) else {
        return Parsed::Invalid {
            reason: DropReason::InvalidPacket,
            partial: empty_packet(),
        };
    };
    if ip[0] >> 4 != 6 {
        return Parsed::Invalid {
            reason: DropReason::InvalidPacket,
            partial: empty_packet(),
        };
    }
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src.copy_from_slice(&ip[8..24]);
    dst.copy_from_slice(&ip[24..40]);
    let mut packet = Packet {
        src: IpAddr::V6(src.into()),
        dst: IpAddr::V6(dst.into()),
        ..empty_packet()
    };
    let mut next = ip[6];
    let mut off = ETH_HLEN + 40;
    for _ in 0..IPV6_MAX_HEADERS {
        if next == NEXTHDR_NONE {
            return Parsed::Invalid {
                reason: DropReason::InvalidIpv6ExtensionHeader,
                partial: packet,
            };
        }
        if !is_extension(next) {
            packet.proto = next;
            return parse_l4(frame, off, packet);
        }
        let Some(opt) = frame.get(off..off + 8) else {
            return Parsed::Invalid {
                reason: DropReason::InvalidPacket,
                partial: packet,
            };
        };
        off += match next {
            NEXTHDR_FRAGMENT => {
                if (u16::from(opt[2]) << 5) | u16::from(opt[3] >> 3) != 0 {
                    return Parsed::Invalid {
                        reason: DropReason::IpFragmentationNotSupported,
                        partial: packet,
                    };
                }
                8
            }
            NEXTHDR_AUTH => (usize::from(opt[1]) + 2) * 4,
            _ => (usize::from(opt[1]) + 1) * 8,
        };
        next = opt[0];
    }
    if is_extension(next) {
        return Parsed::Invalid {
            reason: DropReason::InvalidIpv6ExtensionHeader,
            partial: packet,
        };
    }
    packet.proto = next;
    parse_l4(frame, off, packet)
}

/// Parses a frame as the datapath does.
pub fn parse_frame(frame: &[u8]) -> Parsed {
    let Some(ethertype) = frame.get(12..14) else {
        return Parsed::Invalid {
            reason: DropReason::InvalidPacket,
            partial: empty_packet(),
        };
    };
    match u16::from_be_bytes([ethertype[0], ethertype[1]]) {
        ETH_P_IP => parse_ipv4(frame),
        ETH_P_IPV6 => parse_ipv6(frame),
        ETH_P_ARP => Parsed::Arp,
        _ => Parsed::Invalid {
            reason: DropReason::UnsupportedL3Protocol,
            partial: empty_packet(),
        },
    }
}

/// The MAC addresses of built frames: the source's and the destination's.
pub const FRAME_MACS: ([u8; 6], [u8; 6]) = (
    [0x02, 0xf0, 0xd0, 0x00, 0x00, 0x01],
    [0x02, 0xf0, 0xd0, 0x00, 0x00, 0x02],
);

/// The internet checksum of `bytes`.
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum).unwrap_or(u16::MAX)
}

/// An Ethernet frame carrying `packet` with `payload` bytes of transport payload: a 20-byte
/// IPv4 header (with its checksum) or a 40-byte IPv6 header, then a 20-byte TCP header with
/// the packet's flags, an 8-byte UDP header, or, for other protocols, 8 zero bytes.
/// Addresses of mixed families are not a packet: the destination's family decides and the
/// source is mapped or truncated accordingly.
pub fn build_frame(packet: &Packet, payload: usize) -> Vec<u8> {
    let mut l4 = match packet.proto {
        PROTO_TCP => {
            let mut h = vec![0u8; 20];
            h[0..2].copy_from_slice(&packet.sport.to_be_bytes());
            h[2..4].copy_from_slice(&packet.dport.to_be_bytes());
            h[12] = 5 << 4;
            h[13] = tcp_flags_byte(packet.flags);
            h[14..16].copy_from_slice(&64_240u16.to_be_bytes());
            h
        }
        PROTO_UDP | PROTO_SCTP => {
            let mut h = vec![0u8; 8];
            h[0..2].copy_from_slice(&packet.sport.to_be_bytes());
            h[2..4].copy_from_slice(&packet.dport.to_be_bytes());
            let len = u16::try_from(8 + payload).unwrap_or(u16::MAX);
            h[4..6].copy_from_slice(&len.to_be_bytes());
            h
        }
        _ => vec![0u8; 8],
    };
    l4.resize(l4.len() + payload, 0);
    let mut frame = Vec::with_capacity(ETH_HLEN + 40 + l4.len());
    frame.extend_from_slice(&FRAME_MACS.1);
    frame.extend_from_slice(&FRAME_MACS.0);
    match packet.dst {
        IpAddr::V4(dst) => {
            let src = match packet.src {
                IpAddr::V4(a) => a,
                IpAddr::V6(a) => a.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
            };
            frame.extend_from_slice(&ETH_P_IP.to_be_bytes());
            let mut ip = [0u8; 20];
            ip[0] = 0x45;
            let total = u16::try_from(20 + l4.len()).unwrap_or(u16::MAX);
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            ip[6] = 0x40; // don't fragment
            ip[8] = 64;
            ip[9] = packet.proto;
            ip[12..16].copy_from_slice(&src.octets());
            ip[16..20].copy_from_slice(&dst.octets());
            let sum = checksum(&ip);
            ip[10..12].copy_from_slice(&sum.to_be_bytes());
            frame.extend_from_slice(&ip);
        }
        IpAddr::V6(dst) => {
            let src = match packet.src {
                IpAddr::V6(a) => a,
                IpAddr::V4(a) => a.to_ipv6_mapped(),
            };
            frame.extend_from_slice(&ETH_P_IPV6.to_be_bytes());
            let mut ip = [0u8; 40];
            ip[0] = 0x60;
            let len = u16::try_from(l4.len()).unwrap_or(u16::MAX);
            ip[4..6].copy_from_slice(&len.to_be_bytes());
            ip[6] = packet.proto;
            ip[7] = 64;
            ip[8..24].copy_from_slice(&src.octets());
            ip[24..40].copy_from_slice(&dst.octets());
            frame.extend_from_slice(&ip);
        }
    }
    frame.extend_from_slice(&l4);
    frame
}
