//! [`Packet`]: what the datapath judges, as far as policy cares (addresses, protocol, ports,
//! TCP flags), whether it came from a parsed frame or was built directly.

use std::net::IpAddr;

use crate::conntrack::{TcpFlags, Tuple};

/// A packet, as far as policy cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Packet {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol.
    pub proto: u8,
    /// Source port (0 for protocols without ports).
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// TCP flags.
    pub flags: TcpFlags,
}

impl Packet {
    /// The packet's flow tuple.
    #[inline]
    pub fn tuple(&self) -> Tuple {
        Tuple {
            src: self.src,
            dst: self.dst,
            sport: self.sport,
            dport: self.dport,
            proto: self.proto,
        }
    }
}
