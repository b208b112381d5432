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

/// A field of an ABI struct as a memory image holds it: an integer in native byte order, or
/// bytes as they are.
trait Field: Sized {
    /// Its size in bytes.
    const SIZE: usize;
    /// Writes it into `out`, [`Self::SIZE`] bytes.
    fn write(&self, out: &mut [u8]);
    /// Reads it from `bytes`, [`Self::SIZE`] bytes.
    fn read(bytes: &[u8]) -> Self;
}

impl<const M: usize> Field for [u8; M] {
    const SIZE: usize = M;

    fn write(&self, out: &mut [u8]) {
        out.copy_from_slice(self);
    }

    fn read(bytes: &[u8]) -> Self {
        let mut out = [0; M];
        out.copy_from_slice(bytes);
        out
    }
}

/// [`Field`] for integers: their native-order bytes.
macro_rules! integer_fields {
    ($($t:ty),+) => {$(
        impl Field for $t {
            const SIZE: usize = size_of::<$t>();

            fn write(&self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_ne_bytes());
            }

            fn read(bytes: &[u8]) -> Self {
                Self::from_ne_bytes(Field::read(bytes))
            }
        }
    )+};
}

integer_fields!(u8, u16, u32, u64);

/// Writes fields into a fixed buffer: the memory image of a `#[repr(C)]` struct whose padding
/// is explicit.
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

    fn put<F: Field>(mut self, field: &F) -> Self {
        field.write(&mut self.bytes[self.at..self.at + F::SIZE]);
        self.at += F::SIZE;
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

    fn get<F: Field>(&mut self) -> F {
        let field = F::read(&self.bytes[self.at..self.at + F::SIZE]);
        self.at += F::SIZE;
        field
    }
}

/// `to_bytes` and `from_bytes` of the map keys and values whose image is their fields in
/// declaration order, each with the size of its image.
macro_rules! memory_image {
    ($($t:ident, $size:literal, [$($field:ident),+];)+) => {$(
        impl $t {
            /// The memory image the map holds.
            pub fn to_bytes(&self) -> [u8; $size] {
                Image::new()$(.put(&self.$field))+.done()
            }

            /// From the map's memory image.
            pub fn from_bytes(bytes: &[u8; $size]) -> Self {
                let mut f = Fields::new(bytes);
                Self {
                    $($field: f.get(),)+
                }
            }
        }
    )+};
}

memory_image! {
    IpcacheValue, 8, [identity, flags];
    PolicyValueAbi, 8, [proxy_port, flags, lpm_prefix_length, precedence];
    EndpointValue, 8, [endpoint_id, flags, identity];
    State, 16, [now_ns, flags, pad];
    CtKey4, 16, [saddr, daddr, sport, dport, protocol, pad];
    CtKey6, 40, [saddr, daddr, sport, dport, protocol, pad];
}

impl PolicyKeyAbi {
    /// The key's data bytes (everything after `prefixlen`), as an LPM trie key holds them.
    pub fn data(&self) -> [u8; 12] {
        Image::new()
            .put(&self.endpoint_id)
            .put(&self.egress)
            .put(&self.pad0)
            .put(&self.identity)
            .put(&self.protocol)
            .put(&self.dport)
            .put(&self.pad1)
            .done()
    }

    /// From a prefix length and the data bytes.
    pub fn from_data(prefixlen: u32, data: &[u8; 12]) -> Self {
        let mut f = Fields::new(data);
        Self {
            prefixlen,
            endpoint_id: f.get(),
            egress: f.get(),
            pad0: f.get(),
            identity: f.get(),
            protocol: f.get(),
            dport: f.get(),
            pad1: f.get(),
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
            expires_ns: f.get(),
            remote_identity: f.get(),
            endpoint_id: f.get(),
            flags: f.get(),
            pad: f.get(),
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
            ts_ns: f.get(),
            saddr: f.get(),
            daddr: f.get(),
            src_identity: f.get(),
            dst_identity: f.get(),
            endpoint_id: f.get(),
            sport: f.get(),
            dport: f.get(),
            protocol: f.get(),
            family: f.get(),
            verdict: f.get(),
            drop_reason: f.get(),
            match_type: f.get(),
            is_reply: f.get(),
            egress: f.get(),
            policy_prefix_len: f.get(),
            policy_specific: f.get(),
            tcp_flags: f.get(),
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
