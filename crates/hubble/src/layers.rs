//! The packet headers of a flow: [`Ethernet`], [`Ip`], [`Layer4`] (one of [`Tcp`], [`Udp`],
//! [`Sctp`], ICMP ([`Icmp`]), [`Vrrp`], [`Igmp`]) and the outer headers of a [`Tunnel`].

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::enums::{IpVersion, TunnelProtocol};
use crate::wire;

/// The layer-2 header (`flow.Ethernet`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Ethernet {
    /// The source MAC address.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub source: String,
    /// The destination MAC address.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub destination: String,
}

/// The IP header (`flow.IP`, the field `IP`). Addresses are kept as the text read.
#[doc(alias = "IP")]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Ip {
    /// The source address (before source NAT when `source_xlated` is set).
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub source: String,
    /// The source address after source NAT.
    #[serde(
        alias = "sourceXlated",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub source_xlated: String,
    /// The destination address.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub destination: String,
    /// The family (`ipVersion`).
    #[serde(rename = "ipVersion", skip_serializing_if = "IpVersion::is_unset")]
    pub ip_version: IpVersion,
    /// Whether the packet was encrypted (`TraceReasonEncryptMask`).
    #[serde(
        skip_serializing_if = "wire::is_false",
        deserialize_with = "wire::or_default"
    )]
    pub encrypted: bool,
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

/// The transport header (`flow.Layer4`): a proto `oneof`, so at most one field is set. Each
/// protocol is a field, as in the JSON (`{"TCP": {...}}`); a protocol this crate does not know
/// is ignored on input.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Layer4 {
    /// TCP.
    #[serde(rename = "TCP", skip_serializing_if = "Option::is_none")]
    pub tcp: Option<Tcp>,
    /// UDP.
    #[serde(rename = "UDP", skip_serializing_if = "Option::is_none")]
    pub udp: Option<Udp>,
    /// `ICMPv4`.
    #[serde(rename = "ICMPv4", skip_serializing_if = "Option::is_none")]
    pub icmpv4: Option<Icmp>,
    /// `ICMPv6`.
    #[serde(rename = "ICMPv6", skip_serializing_if = "Option::is_none")]
    pub icmpv6: Option<Icmp>,
    /// SCTP.
    #[serde(rename = "SCTP", skip_serializing_if = "Option::is_none")]
    pub sctp: Option<Sctp>,
    /// VRRP.
    #[serde(rename = "VRRP", skip_serializing_if = "Option::is_none")]
    pub vrrp: Option<Vrrp>,
    /// IGMP.
    #[serde(rename = "IGMP", skip_serializing_if = "Option::is_none")]
    pub igmp: Option<Igmp>,
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

/// A TCP header (`flow.TCP`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tcp {
    /// The source port.
    #[serde(
        alias = "sourcePort",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub source_port: Option<u32>,
    /// The destination port.
    #[serde(
        alias = "destinationPort",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub destination_port: Option<u32>,
    /// The flags; the compact form prints them (`TCP Flags: SYN`) only when they are here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<TcpFlags>,
}

/// The TCP flags (`flow.TCPFlags`); jsonpb prints only those set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "the header's flags, one field each as in Hubble's message"
)]
pub struct TcpFlags {
    /// FIN.
    #[serde(
        rename = "FIN",
        skip_serializing_if = "wire::is_false",
        deserialize_with = "wire::or_default"
    )]
    pub fin: bool,
    /// SYN.
    #[serde(
        rename = "SYN",
        skip_serializing_if = "wire::is_false",
        deserialize_with = "wire::or_default"
    )]
    pub syn: bool,
    /// RST.
    #[serde(
        rename = "RST",
        skip_serializing_if = "wire::is_false",
        deserialize_with = "wire::or_default"
    )]
    pub rst: bool,
    /// PSH.
    #[serde(
        rename = "PSH",
        skip_serializing_if = "wire::is_false",
        deserialize_with = "wire::or_default"
    )]
    pub psh: bool,
    /// ACK.
    #[serde(
        rename = "ACK",
        skip_serializing_if = "wire::is_false",
        deserialize_with = "wire::or_default"
    )]
    pub ack: bool,
    /// URG.
    #[serde(
        rename = "URG",
        skip_serializing_if = "wire::is_false",
        deserialize_with = "wire::or_default"
    )]
    pub urg: bool,
    /// ECE.
    #[serde(
        rename = "ECE",
        skip_serializing_if = "wire::is_false",
        deserialize_with = "wire::or_default"
    )]
    pub ece: bool,
    /// CWR.
    #[serde(
        rename = "CWR",
        skip_serializing_if = "wire::is_false",
        deserialize_with = "wire::or_default"
    )]
    pub cwr: bool,
    /// NS.
    #[serde(
        rename = "NS",
        skip_serializing_if = "wire::is_false",
        deserialize_with = "wire::or_default"
    )]
    pub ns: bool,
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

/// A UDP header (`flow.UDP`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Udp {
    /// The source port.
    #[serde(
        alias = "sourcePort",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub source_port: Option<u32>,
    /// The destination port.
    #[serde(
        alias = "destinationPort",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub destination_port: Option<u32>,
}

/// An SCTP header (`flow.SCTP`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sctp {
    /// The source port.
    #[serde(
        alias = "sourcePort",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub source_port: Option<u32>,
    /// The destination port.
    #[serde(
        alias = "destinationPort",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub destination_port: Option<u32>,
}

/// An ICMP header (`flow.ICMPv4` and `flow.ICMPv6`, which have the same fields).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Icmp {
    /// The message type.
    #[serde(
        rename = "type",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub icmp_type: Option<u32>,
    /// The message code.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub code: Option<u32>,
}

/// A VRRP header (`flow.VRRP`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Vrrp {
    /// The message type.
    #[serde(
        rename = "type",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub vrrp_type: Option<u32>,
    /// The virtual router ID.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub vrid: Option<u32>,
    /// The priority.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub priority: Option<u32>,
}

/// An IGMP header (`flow.IGMP`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Igmp {
    /// The message type.
    #[serde(
        rename = "type",
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub igmp_type: Option<u32>,
    /// The group address.
    #[serde(
        alias = "groupAddress",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "wire::or_default"
    )]
    pub group_address: String,
}

/// The outer headers of a tunnelled flow (`flow.Tunnel`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tunnel {
    /// The encapsulation.
    #[serde(skip_serializing_if = "TunnelProtocol::is_unset")]
    pub protocol: TunnelProtocol,
    /// The outer IP header (`IP`).
    #[serde(rename = "IP", skip_serializing_if = "Option::is_none")]
    pub ip: Option<Ip>,
    /// The outer transport header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub l4: Option<Layer4>,
    /// The virtual network identifier.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "wire::opt_int"
    )]
    pub vni: Option<u32>,
}
