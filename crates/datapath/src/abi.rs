//! The map ABI shared with the eBPF program: `#[repr(C)]` twins of `ebpf/include/fqdnpath_abi.h`.
//!
//! Sizes and field offsets are asserted at compile time here and with `_Static_assert` in the
//! header; a test compiles the header with the system C compiler and compares every size and
//! offset with these types.
//!
//! This file holds the header's declarations (its structs in the header's order) and their layout
//! checks, so the two read side by side; the types' memory images (to and from the bytes the
//! maps and the ring buffer hold) and their conversions from and to the policy's keys and
//! actions are in `abi/image.rs`.

use std::mem::{offset_of, size_of};

mod image;

pub use image::ip_from;

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
