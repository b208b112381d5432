//! The map ABI shared with the eBPF program: `#[repr(C)]` twins of `ebpf/include/fqdnpath_abi.h`.
//!
//! Sizes and field offsets are asserted at compile time here and with `_Static_assert` in the
//! header; a test compiles the header with the system C compiler and compares every size and
//! offset with these types.

use std::mem::{offset_of, size_of};
use std::net::IpAddr;

use fqdnpath_names::EndpointId;
use fqdnpath_policy::identity::Identity;
use fqdnpath_policy::policymap::{PolicyAction, PolicyKey};

/// `FQDNPATH_POLICY_FIXED_BITS`: endpoint, direction, pad and identity.
pub const POLICY_FIXED_BITS: u32 = 64;
/// `FQDNPATH_POLICY_FULL_PREFIX`: the fixed bits, the protocol and the port.
pub const POLICY_FULL_PREFIX: u32 = 88;
/// `FQDNPATH_POLICY_DENY`.
pub const POLICY_FLAG_DENY: u8 = 0x1;
/// The proxy port the DNS redirect entries carry (the DNS proxy's listening port).
pub const DNS_PROXY_PORT: u16 = 10_053;
/// `FQDNPATH_ENDPOINT_FAIL_CLOSED`: a policy change for the endpoint did not fit.
pub const ENDPOINT_FLAG_FAIL_CLOSED: u16 = 0x1;
/// `FQDNPATH_ENDPOINT_HAS_WILDCARD`: the endpoint's policy has identity-0 entries (without
/// any, the program skips that lookup).
pub const ENDPOINT_FLAG_HAS_WILDCARD: u16 = 0x2;
/// `FQDNPATH_STATE_FAIL_CLOSED`: an ipcache change did not fit; all egress is dropped.
pub const STATE_FAIL_CLOSED: u32 = 0x1;
/// `FQDNPATH_STATE_VIRTUAL_CLOCK`: the program reads `now_ns` instead of the kernel's clock.
pub const STATE_VIRTUAL_CLOCK: u32 = 0x2;
/// `FQDNPATH_STATE_INGRESS_SEEN`: a peer opened a flow towards an endpoint.
pub const STATE_INGRESS_SEEN: u32 = 0x4;
/// `FQDNPATH_CT_INGRESS`: the peer opened the flow.
pub const CT_FLAG_INGRESS: u8 = 0x1;
/// `FQDNPATH_CT_CLOSING`: a FIN or RST was seen.
pub const CT_FLAG_CLOSING: u8 = 0x2;
/// `FQDNPATH_CT_ESTABLISHED`: a reply was seen.
pub const CT_FLAG_ESTABLISHED: u8 = 0x4;
/// `FQDNPATH_COUNTER_FORWARDED`.
pub const COUNTER_FORWARDED: u32 = 0;
/// `FQDNPATH_COUNTER_REDIRECTED`.
pub const COUNTER_REDIRECTED: u32 = 1;
/// `FQDNPATH_COUNTER_DROPPED`.
pub const COUNTER_DROPPED: u32 = 2;
/// `FQDNPATH_COUNTER_EVENTS_LOST`: flow events the ring buffer had no room for.
pub const COUNTER_EVENTS_LOST: u32 = 3;
/// `FQDNPATH_COUNTER_MAX`.
pub const COUNTER_MAX: u32 = 4;
/// `FQDNPATH_MARK_MAGIC_TO_PROXY`: `skb->mark` of a packet redirected to the DNS proxy, with
/// the proxy port in the upper 16 bits (Cilium's `MARK_MAGIC_TO_PROXY`).
pub const MARK_MAGIC_TO_PROXY: u32 = 0x0200;
/// `FQDNPATH_NO_POLICY_KEY`.
pub const NO_POLICY_KEY: u8 = 0xff;
/// `FQDNPATH_VERDICT_FORWARDED`.
pub const VERDICT_FORWARDED: u8 = 1;
/// `FQDNPATH_VERDICT_DROPPED`.
pub const VERDICT_DROPPED: u8 = 2;
/// `FQDNPATH_VERDICT_REDIRECTED`.
pub const VERDICT_REDIRECTED: u8 = 3;

/// `struct fqdnpath_ipcache_key4`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IpcacheKey4 {
    /// Bits of `addr` that are fixed.
    pub prefixlen: u32,
    /// The address, network order.
    pub addr: [u8; 4],
}

/// `struct fqdnpath_ipcache_key6`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IpcacheKey6 {
    /// Bits of `addr` that are fixed.
    pub prefixlen: u32,
    /// The address, network order.
    pub addr: [u8; 16],
}

/// `struct fqdnpath_ipcache_value`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IpcacheValue {
    /// The security identity.
    pub identity: u32,
    /// Reserved, zero.
    pub flags: u32,
}

/// `struct fqdnpath_policy_key`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PolicyKeyAbi {
    /// Bits of the data after this field that are fixed (64 to 88).
    pub prefixlen: u32,
    /// The endpoint the entry belongs to.
    pub endpoint_id: u16,
    /// 1 for egress.
    pub egress: u8,
    /// Zero.
    pub pad0: u8,
    /// The remote identity, 0 for any.
    pub identity: u32,
    /// The protocol (0 when wildcarded).
    pub protocol: u8,
    /// The destination port, network order.
    pub dport: [u8; 2],
    /// Zero.
    pub pad1: u8,
}

/// `struct fqdnpath_policy_value`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PolicyValueAbi {
    /// Non-zero: redirect to the DNS proxy on this port (network order).
    pub proxy_port: u16,
    /// [`POLICY_FLAG_DENY`].
    pub flags: u8,
    /// Protocol and port bits the key fixes, 0 to 24.
    pub lpm_prefix_length: u8,
    /// Deny `u32::MAX`, redirect 2, allow 1.
    pub precedence: u32,
}

/// `struct fqdnpath_endpoint_key4`: an IPv4 endpoint address.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EndpointKey4 {
    /// The address.
    pub addr: [u8; 4],
}

/// `struct fqdnpath_endpoint_key6`: an IPv6 endpoint address.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EndpointKey6 {
    /// The address.
    pub addr: [u8; 16],
}

/// `struct fqdnpath_endpoint_value`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EndpointValue {
    /// The endpoint ID (1..=65535).
    pub endpoint_id: u16,
    /// `ENDPOINT_FLAG_*`.
    pub flags: u16,
    /// Its identity.
    pub identity: u32,
}

/// `struct fqdnpath_state`: the single entry of the state array map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct State {
    /// The clock the program reads under [`STATE_VIRTUAL_CLOCK`], nanoseconds.
    pub now_ns: u64,
    /// `STATE_*`.
    pub flags: u32,
    /// Zero.
    pub pad: u32,
}

/// `struct fqdnpath_ct_key4`: an IPv4 flow, as the direction that opened it saw it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CtKey4 {
    /// Source address.
    pub saddr: [u8; 4],
    /// Destination address.
    pub daddr: [u8; 4],
    /// Source port, network order.
    pub sport: u16,
    /// Destination port, network order.
    pub dport: u16,
    /// Protocol.
    pub protocol: u8,
    /// Zero.
    pub pad: [u8; 3],
}

/// `struct fqdnpath_ct_key6`: an IPv6 flow.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CtKey6 {
    /// Source address.
    pub saddr: [u8; 16],
    /// Destination address.
    pub daddr: [u8; 16],
    /// Source port, network order.
    pub sport: u16,
    /// Destination port, network order.
    pub dport: u16,
    /// Protocol.
    pub protocol: u8,
    /// Zero.
    pub pad: [u8; 3],
}

/// A key of either conntrack map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CtKey {
    /// From `fqdn_ct4`.
    V4(CtKey4),
    /// From `fqdn_ct6`.
    V6(CtKey6),
}

/// `struct fqdnpath_ct_value`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CtValue {
    /// When the entry expires, nanoseconds.
    pub expires_ns: u64,
    /// The remote identity when the flow was created.
    pub remote_identity: u32,
    /// The endpoint that opened it.
    pub endpoint_id: u16,
    /// `CT_FLAG_*`.
    pub flags: u8,
    /// Zero.
    pub pad: u8,
}

/// `struct fqdnpath_flow_event`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowEventAbi {
    /// Time, nanoseconds.
    pub ts_ns: u64,
    /// Source address.
    pub saddr: [u8; 16],
    /// Destination address.
    pub daddr: [u8; 16],
    /// Source identity.
    pub src_identity: u32,
    /// Destination identity.
    pub dst_identity: u32,
    /// Source endpoint.
    pub endpoint_id: u16,
    /// Source port, network order.
    pub sport: u16,
    /// Destination port, network order.
    pub dport: u16,
    /// Protocol.
    pub protocol: u8,
    /// 4 or 6.
    pub family: u8,
    /// 1 forwarded, 2 dropped, 3 redirected.
    pub verdict: u8,
    /// A Cilium drop reason, or 0.
    pub drop_reason: u8,
    /// Cilium's policy match type, or 0.
    pub match_type: u8,
    /// 1 for a reply.
    pub is_reply: u8,
    /// 1 egress, 0 ingress.
    pub egress: u8,
    /// The deciding policy key's `lpm_prefix_length`, or [`NO_POLICY_KEY`].
    pub policy_prefix_len: u8,
    /// 1 if the deciding key is the remote identity's own (not identity 0).
    pub policy_specific: u8,
    /// The TCP header's flags byte.
    pub tcp_flags: u8,
}

const _: () = {
    assert!(size_of::<IpcacheKey4>() == 8);
    assert!(size_of::<IpcacheKey6>() == 20);
    assert!(size_of::<IpcacheValue>() == 8);
    assert!(size_of::<PolicyKeyAbi>() == 16);
    assert!(offset_of!(PolicyKeyAbi, identity) == 8);
    assert!(offset_of!(PolicyKeyAbi, protocol) == 12);
    assert!(offset_of!(PolicyKeyAbi, dport) == 13);
    assert!(size_of::<PolicyValueAbi>() == 8);
    assert!(size_of::<EndpointKey4>() == 4);
    assert!(size_of::<EndpointKey6>() == 16);
    assert!(size_of::<EndpointValue>() == 8);
    assert!(size_of::<State>() == 16);
    assert!(size_of::<CtKey4>() == 16);
    assert!(offset_of!(CtKey4, sport) == 8);
    assert!(size_of::<CtKey6>() == 40);
    assert!(offset_of!(CtKey6, sport) == 32);
    assert!(size_of::<CtValue>() == 16);
    assert!(size_of::<FlowEventAbi>() == 64);
    assert!(offset_of!(FlowEventAbi, src_identity) == 40);
    assert!(offset_of!(FlowEventAbi, verdict) == 56);
    assert!(offset_of!(FlowEventAbi, egress) == 60);
};

/// Every ABI type with its size and field offsets, for the cross-check against the C header.
pub fn layout() -> Vec<(&'static str, &'static str, usize)> {
    macro_rules! fields {
        ($out:ident, $c:literal, $t:ty, [$($f:ident),*]) => {
            $out.push(($c, "sizeof", size_of::<$t>()));
            $( $out.push(($c, stringify!($f), offset_of!($t, $f))); )*
        };
    }
    let mut out = Vec::new();
    fields!(out, "fqdnpath_ipcache_key4", IpcacheKey4, [prefixlen, addr]);
    fields!(out, "fqdnpath_ipcache_key6", IpcacheKey6, [prefixlen, addr]);
    fields!(
        out,
        "fqdnpath_ipcache_value",
        IpcacheValue,
        [identity, flags]
    );
    fields!(
        out,
        "fqdnpath_policy_key",
        PolicyKeyAbi,
        [
            prefixlen,
            endpoint_id,
            egress,
            pad0,
            identity,
            protocol,
            dport,
            pad1
        ]
    );
    fields!(
        out,
        "fqdnpath_policy_value",
        PolicyValueAbi,
        [proxy_port, flags, lpm_prefix_length, precedence]
    );
    fields!(out, "fqdnpath_endpoint_key4", EndpointKey4, [addr]);
    fields!(out, "fqdnpath_endpoint_key6", EndpointKey6, [addr]);
    fields!(
        out,
        "fqdnpath_endpoint_value",
        EndpointValue,
        [endpoint_id, flags, identity]
    );
    fields!(out, "fqdnpath_state", State, [now_ns, flags, pad]);
    fields!(
        out,
        "fqdnpath_ct_key4",
        CtKey4,
        [saddr, daddr, sport, dport, protocol, pad]
    );
    fields!(
        out,
        "fqdnpath_ct_key6",
        CtKey6,
        [saddr, daddr, sport, dport, protocol, pad]
    );
    fields!(
        out,
        "fqdnpath_ct_value",
        CtValue,
        [expires_ns, remote_identity, endpoint_id, flags, pad]
    );
    fields!(
        out,
        "fqdnpath_flow_event",
        FlowEventAbi,
        [
            ts_ns,
            saddr,
            daddr,
            src_identity,
            dst_identity,
            endpoint_id,
            sport,
            dport,
            protocol,
            family,
            verdict,
            drop_reason,
            match_type,
            is_reply,
            egress,
            policy_prefix_len,
            policy_specific,
            tcp_flags
        ]
    );
    out
}

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
