/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */
/*
 * The map ABI shared by the eBPF datapath and fqdnpath-datapath (crates/datapath/src/abi.rs).
 * Every struct here has a #[repr(C)] twin in Rust; both sides assert the same sizes and
 * offsets, so a change on one side without the other fails to build.
 */
#ifndef FQDNPATH_ABI_H
#define FQDNPATH_ABI_H

#include <linux/types.h>

/* Verdicts in flow events. */
#define FQDNPATH_VERDICT_FORWARDED 1
#define FQDNPATH_VERDICT_DROPPED 2
#define FQDNPATH_VERDICT_REDIRECTED 3

/* Drop reasons, numbered as Cilium's (Hubble's DropReason). */
#define FQDNPATH_DROP_INVALID_SOURCE_IP 132
#define FQDNPATH_DROP_POLICY_DENIED 133
#define FQDNPATH_DROP_INVALID 134	 /* INVALID_PACKET_DROPPED */
#define FQDNPATH_DROP_CT_INVALID_HDR 135 /* CT_TRUNCATED_OR_INVALID_HEADER */
#define FQDNPATH_DROP_UNKNOWN_L3 139	 /* UNSUPPORTED_L3_PROTOCOL */
#define FQDNPATH_DROP_CT_MAP_INSERTION_FAILED 155
#define FQDNPATH_DROP_INVALID_EXTHDR 156 /* INVALID_IPV6_EXTENSION_HEADER */
#define FQDNPATH_DROP_FRAG_NOSUPPORT 157 /* IP_FRAGMENTATION_NOT_SUPPORTED */
#define FQDNPATH_DROP_POLICY_DENY 181

/* Policy match types, numbered as Cilium's. */
#define FQDNPATH_MATCH_NONE 0
#define FQDNPATH_MATCH_L3_ONLY 1
#define FQDNPATH_MATCH_L3_L4 2
#define FQDNPATH_MATCH_L4_ONLY 3
#define FQDNPATH_MATCH_ALL 4
#define FQDNPATH_MATCH_L3_PROTO 5
#define FQDNPATH_MATCH_PROTO_ONLY 6

/* Reserved identity of an ipcache miss. */
#define FQDNPATH_IDENTITY_WORLD 2

/* Policy value flags. */
#define FQDNPATH_POLICY_DENY 0x1

/* Endpoint value flags. */
#define FQDNPATH_ENDPOINT_FAIL_CLOSED 0x1  /* a policy change for it did not fit */
#define FQDNPATH_ENDPOINT_HAS_WILDCARD 0x2 /* its policy has identity-0 entries */

/* State flags (struct fqdnpath_state). */
#define FQDNPATH_STATE_FAIL_CLOSED 0x1	 /* an ipcache change did not fit: drop all egress */
#define FQDNPATH_STATE_VIRTUAL_CLOCK 0x2 /* use now_ns instead of bpf_ktime_get_ns() */
#define FQDNPATH_STATE_INGRESS_SEEN 0x4	 /* a peer opened a flow towards an endpoint */

/* Conntrack value flags. */
#define FQDNPATH_CT_INGRESS 0x1	    /* the peer opened the flow */
#define FQDNPATH_CT_CLOSING 0x2	    /* a FIN or RST was seen */
#define FQDNPATH_CT_ESTABLISHED 0x4 /* a reply was seen */

/* Conntrack lifetimes (Cilium's bpf-ct-timeout-regular-*), nanoseconds. */
#define FQDNPATH_CT_TCP_ESTABLISHED_NS (21600ULL * 1000000000ULL)
#define FQDNPATH_CT_TCP_SYN_NS (60ULL * 1000000000ULL)
#define FQDNPATH_CT_TCP_CLOSE_NS (10ULL * 1000000000ULL)
#define FQDNPATH_CT_ANY_NS (60ULL * 1000000000ULL)

/* Per-CPU counters (index into the counters array). */
#define FQDNPATH_COUNTER_FORWARDED 0
#define FQDNPATH_COUNTER_REDIRECTED 1
#define FQDNPATH_COUNTER_DROPPED 2
#define FQDNPATH_COUNTER_EVENTS_LOST 3
#define FQDNPATH_COUNTER_MAX 4

/* skb->mark of a packet redirected to the DNS proxy: Cilium's MARK_MAGIC_TO_PROXY, with the
 * proxy port (host order) in the upper 16 bits. */
#define FQDNPATH_MARK_MAGIC_TO_PROXY 0x0200

/* policy_prefix_len of a flow event whose verdict no policy entry decided. */
#define FQDNPATH_NO_POLICY_KEY 0xff

/* Bits of the policy key data that are always fixed: endpoint, direction, pad, identity. */
#define FQDNPATH_POLICY_FIXED_BITS 64
/* Full prefix: the fixed bits, the protocol (8) and the port (16). */
#define FQDNPATH_POLICY_FULL_PREFIX 88

/* ipcache, IPv4 LPM trie: prefixlen counts the bits of addr. */
struct fqdnpath_ipcache_key4 {
	__u32 prefixlen;
	__u8 addr[4];
};

/* ipcache, IPv6 LPM trie. */
struct fqdnpath_ipcache_key6 {
	__u32 prefixlen;
	__u8 addr[16];
};

struct fqdnpath_ipcache_value {
	__u32 identity;
	__u32 flags;
};

/*
 * Policy, one LPM trie for every endpoint. The identity is looked up exactly (once for the
 * remote identity, once for 0, "any"); the protocol and the port are wildcarded by the prefix:
 * the protocol only together with the whole port, the port from its low bits up.
 */
struct fqdnpath_policy_key {
	__u32 prefixlen;
	__u16 endpoint_id;
	__u8 egress;
	__u8 pad0;
	__u32 identity;
	__u8 protocol;
	__u8 dport[2]; /* network byte order */
	__u8 pad1;
};

struct fqdnpath_policy_value {
	__be16 proxy_port;	/* non-zero: redirect to the DNS proxy */
	__u8 flags;		/* FQDNPATH_POLICY_DENY */
	__u8 lpm_prefix_length; /* protocol and port bits the key fixes, 0..24 */
	__u32 precedence;	/* deny: 0xffffffff; redirect 2; allow 1 */
};

/* Source endpoints by address, IPv4 and IPv6 in maps of their own (one word to hash). */
struct fqdnpath_endpoint_key4 {
	__u8 addr[4];
};

struct fqdnpath_endpoint_key6 {
	__u8 addr[16];
};

struct fqdnpath_endpoint_value {
	__u16 endpoint_id; /* 1..65535 */
	__u16 flags;	   /* FQDNPATH_ENDPOINT_* */
	__u32 identity;
};

/* Global state, the single entry of an array map. */
struct fqdnpath_state {
	__u64 now_ns; /* the clock under FQDNPATH_STATE_VIRTUAL_CLOCK */
	__u32 flags;  /* FQDNPATH_STATE_* */
	__u32 pad;
};

/*
 * Connection tracking, keyed by the tuple of the direction that opened the flow, IPv4 and
 * IPv6 in maps of their own as Cilium's cilium_ct4_global and cilium_ct6_global (the IPv4 key
 * hashes and compares in 16 bytes instead of 40).
 */
struct fqdnpath_ct_key4 {
	__u8 saddr[4];
	__u8 daddr[4];
	__be16 sport;
	__be16 dport;
	__u8 protocol;
	__u8 pad[3];
};

struct fqdnpath_ct_key6 {
	__u8 saddr[16];
	__u8 daddr[16];
	__be16 sport;
	__be16 dport;
	__u8 protocol;
	__u8 pad[3];
};

struct fqdnpath_ct_value {
	__u64 expires_ns;
	__u32 remote_identity;
	__u16 endpoint_id;
	__u8 flags; /* FQDNPATH_CT_* */
	__u8 pad;
};

/* One verdict, into the ring buffer. */
struct fqdnpath_flow_event {
	__u64 ts_ns;
	__u8 saddr[16];
	__u8 daddr[16];
	__u32 src_identity;
	__u32 dst_identity;
	__u16 endpoint_id; /* 0: the source is no endpoint */
	__be16 sport;
	__be16 dport;
	__u8 protocol;
	__u8 family; /* 4, 6, or 0 when no IP header was parsed */
	__u8 verdict;
	__u8 drop_reason;
	__u8 match_type;
	__u8 is_reply;
	__u8 egress;		/* 1: egress, 0: ingress */
	__u8 policy_prefix_len; /* the deciding key's lpm_prefix_length, or NO_POLICY_KEY */
	__u8 policy_specific;	/* the deciding key is the remote identity's (not identity 0) */
	__u8 tcp_flags;		/* the TCP header's flags byte */
};

_Static_assert(sizeof(struct fqdnpath_ipcache_key4) == 8, "ipcache_key4 size");
_Static_assert(sizeof(struct fqdnpath_ipcache_key6) == 20, "ipcache_key6 size");
_Static_assert(sizeof(struct fqdnpath_ipcache_value) == 8, "ipcache_value size");
_Static_assert(sizeof(struct fqdnpath_policy_key) == 16, "policy_key size");
_Static_assert(__builtin_offsetof(struct fqdnpath_policy_key, identity) == 8,
	       "policy_key identity");
_Static_assert(__builtin_offsetof(struct fqdnpath_policy_key, protocol) == 12,
	       "policy_key protocol");
_Static_assert(__builtin_offsetof(struct fqdnpath_policy_key, dport) == 13, "policy_key dport");
_Static_assert(sizeof(struct fqdnpath_policy_value) == 8, "policy_value size");
_Static_assert(sizeof(struct fqdnpath_endpoint_key4) == 4, "endpoint_key4 size");
_Static_assert(sizeof(struct fqdnpath_endpoint_key6) == 16, "endpoint_key6 size");
_Static_assert(sizeof(struct fqdnpath_endpoint_value) == 8, "endpoint_value size");
_Static_assert(sizeof(struct fqdnpath_state) == 16, "state size");
_Static_assert(sizeof(struct fqdnpath_ct_key4) == 16, "ct_key4 size");
_Static_assert(__builtin_offsetof(struct fqdnpath_ct_key4, sport) == 8, "ct_key4 sport");
_Static_assert(sizeof(struct fqdnpath_ct_key6) == 40, "ct_key6 size");
_Static_assert(__builtin_offsetof(struct fqdnpath_ct_key6, sport) == 32, "ct_key6 sport");
_Static_assert(sizeof(struct fqdnpath_ct_value) == 16, "ct_value size");
_Static_assert(sizeof(struct fqdnpath_flow_event) == 64, "flow_event size");
_Static_assert(__builtin_offsetof(struct fqdnpath_flow_event, src_identity) == 40,
	       "flow_event src_identity");
_Static_assert(__builtin_offsetof(struct fqdnpath_flow_event, verdict) == 56, "flow_event verdict");
_Static_assert(__builtin_offsetof(struct fqdnpath_flow_event, egress) == 60, "flow_event egress");

#endif /* FQDNPATH_ABI_H */
