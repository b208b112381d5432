//! The map ABI shared with the eBPF program: `#[repr(C)]` twins of `ebpf/include/fqdnpath_abi.h`.
//!
//! Sizes and field offsets are asserted at compile time here and with `_Static_assert` in the
//! header; a test compiles the header with the system C compiler and compares every size and
//! offset with these types.

use std::mem::{offset_of, size_of};
use std::net::IpAddr;

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

/// `struct fqdnpath_endpoint_key`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EndpointKey {
    /// The address (IPv4 in the first 4 bytes).
    pub addr: [u8; 16],
    /// 4 or 6.
    pub family: u8,
    /// Zero.
    pub pad: [u8; 3],
}

/// `struct fqdnpath_endpoint_value`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EndpointValue {
    /// The endpoint ID.
    pub endpoint_id: u16,
    /// Zero.
    pub pad: u16,
    /// Its identity.
    pub identity: u32,
}

/// `struct fqdnpath_ct_key`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CtKey {
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
    /// 4 or 6.
    pub family: u8,
    /// Zero.
    pub pad: u16,
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
    /// Reserved.
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
    /// 133, 181, or 0.
    pub drop_reason: u8,
    /// Cilium's policy match type.
    pub match_type: u8,
    /// 1 for a reply.
    pub is_reply: u8,
    /// Zero.
    pub pad: u32,
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
    assert!(size_of::<EndpointKey>() == 20);
    assert!(size_of::<EndpointValue>() == 8);
    assert!(size_of::<CtKey>() == 40);
    assert!(offset_of!(CtKey, sport) == 32);
    assert!(size_of::<CtValue>() == 16);
    assert!(size_of::<FlowEventAbi>() == 64);
    assert!(offset_of!(FlowEventAbi, src_identity) == 40);
    assert!(offset_of!(FlowEventAbi, verdict) == 56);
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
    fields!(
        out,
        "fqdnpath_endpoint_key",
        EndpointKey,
        [addr, family, pad]
    );
    fields!(
        out,
        "fqdnpath_endpoint_value",
        EndpointValue,
        [endpoint_id, pad, identity]
    );
    fields!(
        out,
        "fqdnpath_ct_key",
        CtKey,
        [saddr, daddr, sport, dport, protocol, family, pad]
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
            pad
        ]
    );
    out
}

/// An address as 16 bytes and a family (IPv4 in the first four bytes).
pub fn addr_bytes(addr: IpAddr) -> ([u8; 16], u8) {
    let mut out = [0u8; 16];
    match addr {
        IpAddr::V4(a) => {
            out[..4].copy_from_slice(&a.octets());
            (out, 4)
        }
        IpAddr::V6(a) => (a.octets(), 6),
    }
}

impl PolicyKeyAbi {
    /// The map key of a logical policy key of `endpoint_id`.
    pub fn from_key(endpoint_id: u16, key: &PolicyKey) -> Self {
        Self {
            prefixlen: POLICY_FIXED_BITS + u32::from(key.lpm_prefix_len()),
            endpoint_id,
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
