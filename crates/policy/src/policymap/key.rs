//! The key of a policy-map entry: remote identity, protocol and a destination port prefix, and
//! the cutting of a port range into such prefixes.

use std::fmt;

use super::MatchType;
use crate::identity::Identity;

/// An IP protocol number in a policy key.
pub type Protocol = u8;
/// TCP.
pub const PROTO_TCP: Protocol = 6;
/// UDP.
pub const PROTO_UDP: Protocol = 17;
/// SCTP.
pub const PROTO_SCTP: Protocol = 132;
/// ICMP.
pub const PROTO_ICMP: Protocol = 1;
/// `ICMPv6`.
pub const PROTO_ICMPV6: Protocol = 58;

/// One key of an endpoint's egress policy map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyKey {
    /// The remote identity; [`Identity::ANY`] for every identity.
    pub identity: Identity,
    /// The protocol; 0 for every protocol (then the port is wildcarded too).
    pub proto: Protocol,
    /// The first port of the prefix.
    pub port: u16,
    /// How many leading bits of the port are fixed (16: one port; 0: any port).
    pub port_prefix_len: u8,
}

impl PolicyKey {
    /// The key's four fields in one machine word, which they fill exactly: the policy map's
    /// table is keyed by it, so that a probe compares one word.
    #[inline]
    pub(super) fn packed(self) -> u64 {
        (u64::from(self.identity.0) << 32)
            | (u64::from(self.proto) << 24)
            | (u64::from(self.port) << 8)
            | u64::from(self.port_prefix_len)
    }
}

impl PolicyKey {
    /// A key for every protocol and port of `identity` (an L3-only key).
    pub fn l3(identity: Identity) -> Self {
        Self {
            identity,
            proto: 0,
            port: 0,
            port_prefix_len: 0,
        }
    }

    /// The number of protocol and port bits the key fixes (Cilium's `lpm_prefix_length`):
    /// 0 for any protocol, 8 for a protocol with any port, up to 24.
    #[inline]
    pub fn lpm_prefix_len(&self) -> u8 {
        if self.proto == 0 {
            0
        } else {
            8 + self.port_prefix_len.min(16)
        }
    }

    /// How this key matches when it is the remote identity's own (not identity 0): Hubble's
    /// `L3_ONLY`, `L3_PROTO` or `L3_L4`.
    #[inline]
    pub fn own_match_type(&self) -> MatchType {
        if self.proto == 0 {
            MatchType::L3Only
        } else if self.port_prefix_len == 0 {
            MatchType::L3Proto
        } else {
            MatchType::L3L4
        }
    }

    /// Whether this key covers every packet `other` covers (same identity, protocol wildcard
    /// or equal, port prefix no longer and agreeing).
    pub fn covers_key(&self, other: &Self) -> bool {
        if self.identity != other.identity {
            return false;
        }
        if self.proto == 0 {
            return true;
        }
        self.proto == other.proto
            && self.port_prefix_len <= other.port_prefix_len
            && self.covers(other.proto, other.port)
    }

    /// Whether the key covers a packet with this protocol and destination port.
    pub fn covers(&self, proto: Protocol, port: u16) -> bool {
        if self.proto == 0 {
            return true;
        }
        if self.proto != proto {
            return false;
        }
        // A prefix longer than the port is the whole port (the fields are public: a key built
        // by hand must not panic here).
        let shift = 16u32.saturating_sub(u32::from(self.port_prefix_len));
        let mask = u16::MAX.checked_shl(shift).unwrap_or(0);
        port & mask == self.port & mask
    }
}

impl fmt::Display for PolicyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "identity={} ", self.identity)?;
        match (self.proto, self.port_prefix_len) {
            (0, _) => f.write_str("proto=ANY port=ANY"),
            (p, 0) => write!(f, "proto={p} port=ANY"),
            (p, 16) => write!(f, "proto={p} port={}", self.port),
            (p, n) => write!(f, "proto={p} port={}/{n}", self.port),
        }
    }
}

/// Splits the port range `start..=end` into aligned prefixes (port, prefix length), as Cilium
/// turns `port`/`endPort` into policy-map keys.
pub fn port_range_prefixes(start: u16, end: u16) -> Vec<(u16, u8)> {
    let mut out = Vec::new();
    if end < start {
        return out;
    }
    let mut lo = u32::from(start);
    let hi = u32::from(end);
    while lo <= hi {
        // The largest aligned block starting at `lo` that stays within `hi`.
        let mut size = if lo == 0 {
            1 << 16
        } else {
            1u32 << lo.trailing_zeros().min(16)
        };
        while lo + size - 1 > hi {
            size >>= 1;
        }
        #[expect(
            clippy::cast_possible_truncation,
            reason = "lo <= 65535, size.trailing_zeros() <= 16"
        )]
        out.push((lo as u16, (16 - size.trailing_zeros()) as u8));
        lo += size;
    }
    out
}
