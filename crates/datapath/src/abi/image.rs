//! The memory images of the ABI types, as the maps and the ring buffer hold them (native byte
//! order, explicit padding), and their conversions from and to the policy's keys and actions.

use std::net::IpAddr;

use fqdnpath_names::EndpointId;
use fqdnpath_policy::identity::Identity;
use fqdnpath_policy::policymap::{PolicyAction, PolicyKey};

use super::{
    CtKey, CtKey4, CtKey6, CtValue, DNS_PROXY_PORT, EndpointKey4, EndpointKey6, EndpointValue,
    FlowEventAbi, IpcacheValue, POLICY_FIXED_BITS, POLICY_FLAG_DENY, POLICY_FULL_PREFIX,
    PolicyKeyAbi, PolicyValueAbi, State,
};

impl PolicyKeyAbi {
    /// The map key of a logical policy key of `endpoint`.
    pub fn from_key(endpoint: EndpointId, key: &PolicyKey) -> Self {
        Self {
            prefixlen: POLICY_FIXED_BITS + u32::from(key.lpm_prefix_len()),
            endpoint_id: endpoint.0,
            egress: 1,
            pad0: 0,
            identity: key.identity.0,
            protocol: key.proto,
            dport: key.port.to_be_bytes(),
            pad1: 0,
        }
    }

    /// A lookup key: everything fixed.
    pub fn lookup(endpoint_id: u16, identity: Identity, protocol: u8, port: u16) -> Self {
        Self {
            prefixlen: POLICY_FULL_PREFIX,
            endpoint_id,
            egress: 1,
            pad0: 0,
            identity: identity.0,
            protocol,
            dport: port.to_be_bytes(),
            pad1: 0,
        }
    }
}

impl PolicyValueAbi {
    /// The map value of an action at `key`.
    pub fn from_action(key: &PolicyKey, action: &PolicyAction) -> Self {
        Self {
            proxy_port: match action {
                PolicyAction::RedirectDns(_) => DNS_PROXY_PORT.to_be(),
                _ => 0,
            },
            flags: if matches!(action, PolicyAction::Deny) {
                POLICY_FLAG_DENY
            } else {
                0
            },
            lpm_prefix_length: key.lpm_prefix_len(),
            precedence: action.precedence(),
        }
    }
}

/// Writes integers and byte arrays into a fixed buffer in native byte order: the memory image
/// of a `#[repr(C)]` struct whose padding is explicit.
struct Image<const N: usize> {
    bytes: [u8; N],
    at: usize,
}

impl<const N: usize> Image<N> {
    fn new() -> Self {
        Self {
            bytes: [0; N],
            at: 0,
        }
    }

    fn put(mut self, field: &[u8]) -> Self {
        self.bytes[self.at..self.at + field.len()].copy_from_slice(field);
        self.at += field.len();
        self
    }

    fn done(self) -> [u8; N] {
        debug_assert_eq!(self.at, N, "every byte of the image written");
        self.bytes
    }
}

/// Reads what [`Image`] writes.
struct Fields<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    fn take<const M: usize>(&mut self) -> [u8; M] {
        let mut out = [0u8; M];
        out.copy_from_slice(&self.bytes[self.at..self.at + M]);
        self.at += M;
        out
    }

    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }

    fn u16(&mut self) -> u16 {
        u16::from_ne_bytes(self.take())
    }

    fn u32(&mut self) -> u32 {
        u32::from_ne_bytes(self.take())
    }

    fn u64(&mut self) -> u64 {
        u64::from_ne_bytes(self.take())
    }
}

impl IpcacheValue {
    /// The memory image the map holds.
    pub fn to_bytes(&self) -> [u8; 8] {
        Image::new()
            .put(&self.identity.to_ne_bytes())
            .put(&self.flags.to_ne_bytes())
            .done()
    }

    /// From the map's memory image.
    pub fn from_bytes(bytes: &[u8; 8]) -> Self {
        let mut f = Fields::new(bytes);
        Self {
            identity: f.u32(),
            flags: f.u32(),
        }
    }
}

impl PolicyKeyAbi {
    /// The key's data bytes (everything after `prefixlen`), as an LPM trie key holds them.
    pub fn data(&self) -> [u8; 12] {
        Image::new()
            .put(&self.endpoint_id.to_ne_bytes())
            .put(&[self.egress, self.pad0])
            .put(&self.identity.to_ne_bytes())
            .put(&[self.protocol])
            .put(&self.dport)
            .put(&[self.pad1])
            .done()
    }

    /// From a prefix length and the data bytes.
    pub fn from_data(prefixlen: u32, data: &[u8; 12]) -> Self {
        let mut f = Fields::new(data);
        Self {
            prefixlen,
            endpoint_id: f.u16(),
            egress: f.u8(),
            pad0: f.u8(),
            identity: f.u32(),
            protocol: f.u8(),
            dport: f.take(),
            pad1: f.u8(),
        }
    }

    /// The policy key this map key stands for (the port masked to the prefix).
    pub fn to_key(&self) -> PolicyKey {
        let lpm = self.prefixlen.saturating_sub(POLICY_FIXED_BITS);
        if lpm == 0 {
            return PolicyKey::l3(Identity(self.identity));
        }
        let bits = u8::try_from(lpm.saturating_sub(8).min(16)).unwrap_or(16);
        let mask = u16::MAX.checked_shl(16 - u32::from(bits)).unwrap_or(0);
        PolicyKey {
            identity: Identity(self.identity),
            proto: self.protocol,
            port: u16::from_be_bytes(self.dport) & mask,
            port_prefix_len: bits,
        }
    }
}

impl PolicyValueAbi {
    /// The memory image the map holds.
    pub fn to_bytes(&self) -> [u8; 8] {
        Image::new()
            .put(&self.proxy_port.to_ne_bytes())
            .put(&[self.flags, self.lpm_prefix_length])
            .put(&self.precedence.to_ne_bytes())
            .done()
    }

    /// From the map's memory image.
    pub fn from_bytes(bytes: &[u8; 8]) -> Self {
        let mut f = Fields::new(bytes);
        Self {
            proxy_port: f.u16(),
            flags: f.u8(),
            lpm_prefix_length: f.u8(),
            precedence: f.u32(),
        }
    }
}

impl EndpointKey4 {
    /// The memory image the map holds.
    pub fn to_bytes(&self) -> [u8; 4] {
        self.addr
    }
}

impl EndpointKey6 {
    /// The memory image the map holds.
    pub fn to_bytes(&self) -> [u8; 16] {
        self.addr
    }
}

impl EndpointValue {
    /// The memory image the map holds.
    pub fn to_bytes(&self) -> [u8; 8] {
        Image::new()
            .put(&self.endpoint_id.to_ne_bytes())
            .put(&self.flags.to_ne_bytes())
            .put(&self.identity.to_ne_bytes())
            .done()
    }

    /// From the map's memory image.
    pub fn from_bytes(bytes: &[u8; 8]) -> Self {
        let mut f = Fields::new(bytes);
        Self {
            endpoint_id: f.u16(),
            flags: f.u16(),
            identity: f.u32(),
        }
    }
}

impl State {
    /// The memory image the map holds.
    pub fn to_bytes(&self) -> [u8; 16] {
        Image::new()
            .put(&self.now_ns.to_ne_bytes())
            .put(&self.flags.to_ne_bytes())
            .put(&self.pad.to_ne_bytes())
            .done()
    }

    /// From the map's memory image.
    pub fn from_bytes(bytes: &[u8; 16]) -> Self {
        let mut f = Fields::new(bytes);
        Self {
            now_ns: f.u64(),
            flags: f.u32(),
            pad: f.u32(),
        }
    }
}

/// The memory images of the two conntrack keys, which differ only in their address width.
macro_rules! ct_key_image {
    ($key:ident, $size:literal) => {
        impl $key {
            /// From the map's memory image.
            pub fn from_bytes(bytes: &[u8; $size]) -> Self {
                let mut f = Fields::new(bytes);
                Self {
                    saddr: f.take(),
                    daddr: f.take(),
                    sport: f.u16(),
                    dport: f.u16(),
                    protocol: f.u8(),
                    pad: f.take(),
                }
            }

            /// The memory image the map holds.
            pub fn to_bytes(&self) -> [u8; $size] {
                Image::new()
                    .put(&self.saddr)
                    .put(&self.daddr)
                    .put(&self.sport.to_ne_bytes())
                    .put(&self.dport.to_ne_bytes())
                    .put(&[self.protocol])
                    .put(&self.pad)
                    .done()
            }
        }
    };
}

ct_key_image!(CtKey4, 16);
ct_key_image!(CtKey6, 40);

impl CtKey {
    /// The source address.
    pub fn src(&self) -> IpAddr {
        match self {
            Self::V4(k) => IpAddr::V4(k.saddr.into()),
            Self::V6(k) => IpAddr::V6(k.saddr.into()),
        }
    }

    /// The destination address.
    pub fn dst(&self) -> IpAddr {
        match self {
            Self::V4(k) => IpAddr::V4(k.daddr.into()),
            Self::V6(k) => IpAddr::V6(k.daddr.into()),
        }
    }

    /// The protocol.
    pub fn protocol(&self) -> u8 {
        match self {
            Self::V4(k) => k.protocol,
            Self::V6(k) => k.protocol,
        }
    }
}

impl CtValue {
    /// From the map's memory image.
    pub fn from_bytes(bytes: &[u8; 16]) -> Self {
        let mut f = Fields::new(bytes);
        Self {
            expires_ns: f.u64(),
            remote_identity: f.u32(),
            endpoint_id: f.u16(),
            flags: f.u8(),
            pad: f.u8(),
        }
    }
}

impl FlowEventAbi {
    /// The size of an event in the ring buffer.
    pub const SIZE: usize = 64;

    /// From a ring-buffer record; `None` if it is not the size of an event.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != Self::SIZE {
            return None;
        }
        let mut f = Fields::new(bytes);
        Some(Self {
            ts_ns: f.u64(),
            saddr: f.take(),
            daddr: f.take(),
            src_identity: f.u32(),
            dst_identity: f.u32(),
            endpoint_id: f.u16(),
            sport: f.u16(),
            dport: f.u16(),
            protocol: f.u8(),
            family: f.u8(),
            verdict: f.u8(),
            drop_reason: f.u8(),
            match_type: f.u8(),
            is_reply: f.u8(),
            egress: f.u8(),
            policy_prefix_len: f.u8(),
            policy_specific: f.u8(),
            tcp_flags: f.u8(),
        })
    }

    /// The source address (unspecified IPv4 if no IP header was parsed).
    pub fn src(&self) -> IpAddr {
        ip_from(self.family, &self.saddr)
    }

    /// The destination address.
    pub fn dst(&self) -> IpAddr {
        ip_from(self.family, &self.daddr)
    }
}

/// The address a family byte and 16 address bytes stand for (family 4: the first 4 bytes;
/// anything but 6 reads as IPv4).
pub fn ip_from(family: u8, bytes: &[u8; 16]) -> IpAddr {
    if family == 6 {
        IpAddr::V6((*bytes).into())
    } else {
        IpAddr::V4([bytes[0], bytes[1], bytes[2], bytes[3]].into())
    }
}
