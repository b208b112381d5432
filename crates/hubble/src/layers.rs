//! The packet headers of a flow: [`Ethernet`], [`Ip`], [`Layer4`] (one of [`Tcp`], [`Udp`],
//! [`Sctp`], ICMP ([`Icmp`]), [`Vrrp`], [`Igmp`]) and the outer headers of a [`Tunnel`].

use std::net::IpAddr;

use crate::enums::{IpVersion, TunnelProtocol};
use crate::wire::message;

message! {
    /// The layer-2 header (`flow.Ethernet`).
    pub struct Ethernet {
        /// The source MAC address.
        pub source: String,
        /// The destination MAC address.
        pub destination: String,
    }

    /// The IP header (`flow.IP`, the field `IP`). Addresses are kept as the text read.
    #[doc(alias = "IP")]
    pub struct Ip {
        /// The source address (before source NAT when `source_xlated` is set).
        pub source: String,
        /// The source address after source NAT.
        pub source_xlated: String,
        /// The destination address.
        pub destination: String,
        /// The family (`ipVersion`).
        #[serde(rename = "ipVersion")]
        pub ip_version: IpVersion,
        /// Whether the packet was encrypted (`TraceReasonEncryptMask`).
        pub encrypted: bool,
    }
}

impl Ip {
    /// The header of a packet from `source` to `destination`, its family taken from
    /// `source`.
    pub fn new(source: IpAddr, destination: IpAddr) -> Self {
        Self {
            source: source.to_string(),
            destination: destination.to_string(),
            ip_version: if source.is_ipv4() {
                IpVersion::Ipv4
            } else {
                IpVersion::Ipv6
            },
            ..Self::default()
        }
    }
}

message! {
    /// The transport header (`flow.Layer4`): a proto `oneof`, so at most one field is set. Each
    /// protocol is a field, as in the JSON (`{"TCP": {...}}`); a protocol this crate does not know
    /// is ignored on input.
    pub struct Layer4 {
        /// TCP.
        #[serde(rename = "TCP")]
        pub tcp: Option<Tcp>,
        /// UDP.
        #[serde(rename = "UDP")]
        pub udp: Option<Udp>,
        /// `ICMPv4`.
        #[serde(rename = "ICMPv4")]
        pub icmpv4: Option<Icmp>,
        /// `ICMPv6`.
        #[serde(rename = "ICMPv6")]
        pub icmpv6: Option<Icmp>,
        /// SCTP.
        #[serde(rename = "SCTP")]
        pub sctp: Option<Sctp>,
        /// VRRP.
        #[serde(rename = "VRRP")]
        pub vrrp: Option<Vrrp>,
        /// IGMP.
        #[serde(rename = "IGMP")]
        pub igmp: Option<Igmp>,
    }
}

impl Layer4 {
    /// A TCP header with these ports and no flags.
    pub fn tcp(source_port: u16, destination_port: u16) -> Self {
        Self {
            tcp: Some(Tcp {
                source_port: Some(source_port.into()),
                destination_port: Some(destination_port.into()),
                flags: None,
            }),
            ..Self::default()
        }
    }

    /// A UDP header with these ports.
    pub fn udp(source_port: u16, destination_port: u16) -> Self {
        Self {
            udp: Some(Udp {
                source_port: Some(source_port.into()),
                destination_port: Some(destination_port.into()),
            }),
            ..Self::default()
        }
    }

    /// The source and destination ports, for the protocols that have them (TCP, UDP, SCTP);
    /// an unset port reads as 0.
    pub fn ports(&self) -> Option<(u32, u32)> {
        let pair = |s: Option<u32>, d: Option<u32>| (s.unwrap_or(0), d.unwrap_or(0));
        if let Some(t) = &self.tcp {
            Some(pair(t.source_port, t.destination_port))
        } else if let Some(u) = &self.udp {
            Some(pair(u.source_port, u.destination_port))
        } else {
            self.sctp
                .as_ref()
                .map(|s| pair(s.source_port, s.destination_port))
        }
    }
}

message! {
    /// A TCP header (`flow.TCP`).
    pub struct Tcp {
        /// The source port.
        pub source_port: Option<u32>,
        /// The destination port.
        pub destination_port: Option<u32>,
        /// The flags; the compact form prints them (`TCP Flags: SYN`) only when they are here.
        pub flags: Option<TcpFlags>,
    }

    /// The TCP flags (`flow.TCPFlags`); jsonpb prints only those set.
    #[derive(Copy, Hash)]
    pub struct TcpFlags {
        /// FIN.
        #[serde(rename = "FIN")]
        pub fin: bool,
        /// SYN.
        #[serde(rename = "SYN")]
        pub syn: bool,
        /// RST.
        #[serde(rename = "RST")]
        pub rst: bool,
        /// PSH.
        #[serde(rename = "PSH")]
        pub psh: bool,
        /// ACK.
        #[serde(rename = "ACK")]
        pub ack: bool,
        /// URG.
        #[serde(rename = "URG")]
        pub urg: bool,
        /// ECE.
        #[serde(rename = "ECE")]
        pub ece: bool,
        /// CWR.
        #[serde(rename = "CWR")]
        pub cwr: bool,
        /// NS.
        #[serde(rename = "NS")]
        pub ns: bool,
    }
}

impl TcpFlags {
    /// The names of the flags set, in the order Hubble lists them: SYN, ACK, RST, FIN, PSH,
    /// URG, ECE, CWR, NS.
    pub fn names(&self) -> impl Iterator<Item = &'static str> {
        [
            (self.syn, "SYN"),
            (self.ack, "ACK"),
            (self.rst, "RST"),
            (self.fin, "FIN"),
            (self.psh, "PSH"),
            (self.urg, "URG"),
            (self.ece, "ECE"),
            (self.cwr, "CWR"),
            (self.ns, "NS"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
    }
}

message! {
    /// A UDP header (`flow.UDP`).
    pub struct Udp {
        /// The source port.
        pub source_port: Option<u32>,
        /// The destination port.
        pub destination_port: Option<u32>,
    }

    /// An SCTP header (`flow.SCTP`).
    pub struct Sctp {
        /// The source port.
        pub source_port: Option<u32>,
        /// The destination port.
        pub destination_port: Option<u32>,
    }

    /// An ICMP header (`flow.ICMPv4` and `flow.ICMPv6`, which have the same fields).
    pub struct Icmp {
        /// The message type.
        #[serde(rename = "type")]
        pub icmp_type: Option<u32>,
        /// The message code.
        pub code: Option<u32>,
    }

    /// A VRRP header (`flow.VRRP`).
    pub struct Vrrp {
        /// The message type.
        #[serde(rename = "type")]
        pub vrrp_type: Option<u32>,
        /// The virtual router ID.
        pub vrid: Option<u32>,
        /// The priority.
        pub priority: Option<u32>,
    }

    /// An IGMP header (`flow.IGMP`).
    pub struct Igmp {
        /// The message type.
        #[serde(rename = "type")]
        pub igmp_type: Option<u32>,
        /// The group address.
        pub group_address: String,
    }

    /// The outer headers of a tunnelled flow (`flow.Tunnel`).
    pub struct Tunnel {
        /// The encapsulation.
        pub protocol: TunnelProtocol,
        /// The outer IP header (`IP`).
        #[serde(rename = "IP")]
        pub ip: Option<Ip>,
        /// The outer transport header.
        pub l4: Option<Layer4>,
        /// The virtual network identifier.
        pub vni: Option<u32>,
    }
}
