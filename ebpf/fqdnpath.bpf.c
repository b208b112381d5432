// SPDX-License-Identifier: (GPL-2.0 OR MIT)
/*
 * fqdnpath's datapath: TC classifiers that judge an endpoint's egress packets the way the
 * reference datapath (crates/datapath/src/reference.rs and frame.rs) does, and so the way
 * Cilium does:
 *
 *   parse -> source endpoint -> reply of a flow the peer opened? pass
 *         -> ipcache LPM (miss = world) -> policy LPM (identity, then identity 0)
 *         -> conntrack -> verdict, counter, flow event
 *
 * Every egress packet of a flow is judged, not only the first, so a connection is cut as soon
 * as its destination loses its identity. A packet that cannot be parsed is dropped with
 * Cilium's drop reason; non-IP frames other than ARP are dropped too: nothing passes by
 * accident. The maps are written from Rust (crates/kernel) through aya; their layout is
 * include/fqdnpath_abi.h.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "include/fqdnpath_abi.h"

#define ETH_HLEN_ 14
#define IPV6_HLEN 40
#define IPV6_MAX_HEADERS 4

#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_AUTH 51
#define NEXTHDR_NONE 59
#define NEXTHDR_DEST 60

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_RST 0x04

/* Sizes are set by the loader (MapSizes); these are Cilium's defaults. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct fqdnpath_ipcache_key4);
	__type(value, struct fqdnpath_ipcache_value);
	__uint(max_entries, 512000);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} fqdn_ipcache4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct fqdnpath_ipcache_key6);
	__type(value, struct fqdnpath_ipcache_value);
	__uint(max_entries, 512000);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} fqdn_ipcache6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct fqdnpath_policy_key);
	__type(value, struct fqdnpath_policy_value);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} fqdn_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct fqdnpath_endpoint_key4);
	__type(value, struct fqdnpath_endpoint_value);
	__uint(max_entries, 1024);
} fqdn_endpoints4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct fqdnpath_endpoint_key6);
	__type(value, struct fqdnpath_endpoint_value);
	__uint(max_entries, 1024);
} fqdn_endpoints6 SEC(".maps");

/*
 * The generation of the endpoint maps: userspace bumps it after every change to them, so that
 * a CPU's cached endpoint (fqdn_endpoint_cache) is used only while it is current.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} fqdn_endpoints_gen SEC(".maps");

/*
 * Per CPU, the last endpoint found and the generation it was found in. A program runs per
 * endpoint interface, as Cilium's, so consecutive packets on a CPU mostly come from one
 * endpoint: the cache answers them with two inlined array lookups and a compare, where the
 * hash lookup costs four kernel calls (hash, bucket walk, memcmp).
 */
struct endpoint_cache {
	__u64 gen;
	__u32 family; /* 0: empty */
	__u32 pad;
	__u8 addr[16];
	struct fqdnpath_endpoint_value value;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct endpoint_cache);
	__uint(max_entries, 1);
} fqdn_endpoint_cache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct fqdnpath_ct_key4);
	__type(value, struct fqdnpath_ct_value);
	__uint(max_entries, 262144);
} fqdn_ct4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct fqdnpath_ct_key6);
	__type(value, struct fqdnpath_ct_value);
	__uint(max_entries, 262144);
} fqdn_ct6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct fqdnpath_state);
	__uint(max_entries, 1);
} fqdn_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, FQDNPATH_COUNTER_MAX);
} fqdn_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} fqdn_events SEC(".maps");

/* The bare lookups the full program is measured against (benches/kernel.rs). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1024);
} fqdn_bare_hash SEC(".maps");

/* What the parser extracts; the event is filled from it. */
struct packet {
	__u8 family; /* 0: not parsed as IP */
	__u8 protocol;
	__u8 tcp_flags;
	__u8 pad;
	__be16 sport;
	__be16 dport;
};

static __always_inline struct fqdnpath_state *state(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&fqdn_state, &zero);
}

static __always_inline __u64 now_ns(const struct fqdnpath_state *st)
{
	if (st && (st->flags & FQDNPATH_STATE_VIRTUAL_CLOCK))
		return st->now_ns;
	return bpf_ktime_get_ns();
}

static __always_inline void count(__u32 index)
{
	__u64 *counter = bpf_map_lookup_elem(&fqdn_counters, &index);

	if (counter)
		*counter += 1;
}

/*
 * The len bytes at off: a pointer into the packet when they are in its linear data (the
 * common case), else into buf, filled by bpf_skb_load_bytes; NULL when the packet is shorter.
 * Callers read the header through a typed pointer, so that clang emits word loads: copying
 * packet bytes with memcpy makes it load them one by one (their alignment is unknown).
 */
static __always_inline const void *header(struct __sk_buff *skb, __u32 off, void *buf, __u32 len)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	if (off <= 512 && data + off + len <= data_end)
		return data + off;
	if (bpf_skb_load_bytes(skb, off, buf, len) < 0)
		return 0;
	return buf;
}

/* The first 14 bytes of a TCP header: the ports and the flags byte. */
struct tcp_head {
	__be16 sport;
	__be16 dport;
	__u8 seq_ack_off[9];
	__u8 flags;
};

/* The ports of UDP and SCTP. */
struct ports {
	__be16 sport;
	__be16 dport;
};

/* The start of an IPv6 extension header. */
struct ext_head {
	__u8 nexthdr;
	__u8 len;
	__be16 frag_off; /* fragment headers: offset (13 bits), then flags */
	__u8 rest[4];
};

/*
 * Reads the transport ports (and TCP flags) at l4_off. Protocols without ports get port 0.
 * Returns 0 or a drop reason.
 */
static __always_inline int parse_l4(struct __sk_buff *skb, __u32 l4_off, struct packet *pkt)
{
	const struct tcp_head *tcp;
	const struct ports *ports;
	union {
		struct tcp_head tcp;
		struct ports ports;
	} buf;

	switch (pkt->protocol) {
	case IPPROTO_TCP:
		tcp = header(skb, l4_off, &buf.tcp, sizeof(buf.tcp));
		if (!tcp)
			return FQDNPATH_DROP_CT_INVALID_HDR;
		pkt->sport = tcp->sport;
		pkt->dport = tcp->dport;
		pkt->tcp_flags = tcp->flags;
		return 0;
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		ports = header(skb, l4_off, &buf.ports, sizeof(buf.ports));
		if (!ports)
			return FQDNPATH_DROP_CT_INVALID_HDR;
		pkt->sport = ports->sport;
		pkt->dport = ports->dport;
		return 0;
	default:
		return 0;
	}
}

static __always_inline int parse_ipv4(struct __sk_buff *skb, struct packet *pkt,
				      struct fqdnpath_flow_event *ev)
{
	struct iphdr buf;
	const struct iphdr *ip = header(skb, ETH_HLEN_, &buf, sizeof(buf));
	__u32 ihl;

	if (!ip || ip->version != 4 || ip->ihl < 5)
		return FQDNPATH_DROP_INVALID;
	ihl = ip->ihl * 4;
	pkt->family = 4;
	pkt->protocol = ip->protocol;
	__builtin_memcpy(ev->saddr, &ip->saddr, 4);
	__builtin_memcpy(ev->daddr, &ip->daddr, 4);
	/* A fragment other than the first carries no transport header. */
	if (ip->frag_off & bpf_htons(0x1fff))
		return FQDNPATH_DROP_FRAG_NOSUPPORT;
	return parse_l4(skb, ETH_HLEN_ + ihl, pkt);
}

static __always_inline int parse_ipv6(struct __sk_buff *skb, struct packet *pkt,
				      struct fqdnpath_flow_event *ev)
{
	struct ipv6hdr buf;
	const struct ipv6hdr *ip = header(skb, ETH_HLEN_, &buf, sizeof(buf));
	__u32 off = ETH_HLEN_ + IPV6_HLEN;
	__u8 nexthdr;
	int i;

	if (!ip || ip->version != 6)
		return FQDNPATH_DROP_INVALID;
	pkt->family = 6;
	nexthdr = ip->nexthdr;
	__builtin_memcpy(ev->saddr, &ip->saddr, 16);
	__builtin_memcpy(ev->daddr, &ip->daddr, 16);

	/* The common extension headers, at most IPV6_MAX_HEADERS of them, as Cilium. */
#pragma unroll
	for (i = 0; i < IPV6_MAX_HEADERS; i++) {
		struct ext_head ext_buf;
		const struct ext_head *ext;

		switch (nexthdr) {
		case NEXTHDR_NONE:
			return FQDNPATH_DROP_INVALID_EXTHDR;
		case NEXTHDR_HOP:
		case NEXTHDR_ROUTING:
		case NEXTHDR_DEST:
		case NEXTHDR_AUTH:
		case NEXTHDR_FRAGMENT:
			break;
		default:
			pkt->protocol = nexthdr;
			return parse_l4(skb, off, pkt);
		}
		ext = header(skb, off, &ext_buf, sizeof(ext_buf));
		if (!ext)
			return FQDNPATH_DROP_INVALID;
		if (nexthdr == NEXTHDR_FRAGMENT) {
			/* Fragment offset (13 bits) other than 0: no transport header. */
			if (ext->frag_off & bpf_htons(0xfff8))
				return FQDNPATH_DROP_FRAG_NOSUPPORT;
			off += 8;
		} else if (nexthdr == NEXTHDR_AUTH) {
			off += ((__u32)ext->len + 2) * 4;
		} else {
			off += ((__u32)ext->len + 1) * 8;
		}
		nexthdr = ext->nexthdr;
	}
	switch (nexthdr) {
	case NEXTHDR_NONE:
	case NEXTHDR_HOP:
	case NEXTHDR_ROUTING:
	case NEXTHDR_DEST:
	case NEXTHDR_AUTH:
	case NEXTHDR_FRAGMENT:
		/* More extension headers than Cilium walks. */
		return FQDNPATH_DROP_INVALID_EXTHDR;
	}
	pkt->protocol = nexthdr;
	return parse_l4(skb, off, pkt);
}

/*
 * Parses the frame into pkt and the event's addresses. Returns 0 for an IP packet, 1 for an
 * ARP frame (passed unjudged), or a drop reason.
 */
static __always_inline int parse(struct __sk_buff *skb, struct packet *pkt,
				 struct fqdnpath_flow_event *ev)
{
	__be16 buf;
	const __be16 *proto = header(skb, 12, &buf, sizeof(buf));

	if (!proto)
		return FQDNPATH_DROP_INVALID;
	switch (*proto) {
	case bpf_htons(ETH_P_IP):
		return parse_ipv4(skb, pkt, ev);
	case bpf_htons(ETH_P_IPV6):
		return parse_ipv6(skb, pkt, ev);
	case bpf_htons(ETH_P_ARP):
		return 1;
	default:
		return FQDNPATH_DROP_UNKNOWN_L3;
	}
}

static __always_inline __u32 ipcache_identity(const __u8 family, const __u8 *addr)
{
	struct fqdnpath_ipcache_value *value;

	if (family == 4) {
		struct fqdnpath_ipcache_key4 key = {.prefixlen = 32};

		__builtin_memcpy(key.addr, addr, 4);
		value = bpf_map_lookup_elem(&fqdn_ipcache4, &key);
	} else {
		struct fqdnpath_ipcache_key6 key = {.prefixlen = 128};

		__builtin_memcpy(key.addr, addr, 16);
		value = bpf_map_lookup_elem(&fqdn_ipcache6, &key);
	}
	return value ? value->identity : FQDNPATH_IDENTITY_WORLD;
}

static __always_inline int addr_eq(const __u8 *a, const __u8 *b, const __u8 family)
{
	if (family == 4)
		return *(const __u32 *)a == *(const __u32 *)b;
	return ((const __u64 *)a)[0] == ((const __u64 *)b)[0] &&
	       ((const __u64 *)a)[1] == ((const __u64 *)b)[1];
}

/* The endpoint at addr: this CPU's cached one when it is that and current, else the map's. */
static __always_inline const struct fqdnpath_endpoint_value *endpoint(const __u8 family,
								      const __u8 *addr)
{
	struct fqdnpath_endpoint_value *ep;
	struct endpoint_cache *cache;
	__u32 zero = 0;
	__u64 gen, *genp;

	genp = bpf_map_lookup_elem(&fqdn_endpoints_gen, &zero);
	cache = bpf_map_lookup_elem(&fqdn_endpoint_cache, &zero);
	if (!genp || !cache)
		return 0;
	/* Read before the map: a change racing the lookup leaves the cache stale, never current. */
	gen = *(volatile __u64 *)genp;
	if (cache->family == family && cache->gen == gen && addr_eq(cache->addr, addr, family))
		return &cache->value;
	if (family == 4) {
		struct fqdnpath_endpoint_key4 key;

		__builtin_memcpy(key.addr, addr, 4);
		ep = bpf_map_lookup_elem(&fqdn_endpoints4, &key);
	} else {
		struct fqdnpath_endpoint_key6 key;

		__builtin_memcpy(key.addr, addr, 16);
		ep = bpf_map_lookup_elem(&fqdn_endpoints6, &key);
	}
	if (!ep)
		return 0;
	cache->value = *ep;
	__builtin_memcpy(cache->addr, addr, 16);
	cache->gen = gen;
	cache->family = family;
	return &cache->value;
}

static __always_inline __u64 ct_lifetime(__u8 protocol, __u8 flags)
{
	if (protocol != IPPROTO_TCP)
		return FQDNPATH_CT_ANY_NS;
	if (flags & FQDNPATH_CT_CLOSING)
		return FQDNPATH_CT_TCP_CLOSE_NS;
	if (flags & FQDNPATH_CT_ESTABLISHED)
		return FQDNPATH_CT_TCP_ESTABLISHED_NS;
	return FQDNPATH_CT_TCP_SYN_NS;
}

/* A conntrack key of either family; pkt->family says which member is in use. */
union ct_key {
	struct fqdnpath_ct_key4 v4;
	struct fqdnpath_ct_key6 v6;
};

static __always_inline void ct_key(union ct_key *key, const struct fqdnpath_flow_event *ev,
				   const struct packet *pkt, const __u8 family, int reversed)
{
	const __u8 *src = reversed ? ev->daddr : ev->saddr;
	const __u8 *dst = reversed ? ev->saddr : ev->daddr;
	__be16 sport = reversed ? pkt->dport : pkt->sport;
	__be16 dport = reversed ? pkt->sport : pkt->dport;

	/* Every byte of the family's key is written (padding included): no zeroing first. */
	if (family == 4) {
		key->v4 = (struct fqdnpath_ct_key4){
			.sport = sport,
			.dport = dport,
			.protocol = pkt->protocol,
		};
		__builtin_memcpy(key->v4.saddr, src, 4);
		__builtin_memcpy(key->v4.daddr, dst, 4);
	} else {
		key->v6 = (struct fqdnpath_ct_key6){
			.sport = sport,
			.dport = dport,
			.protocol = pkt->protocol,
		};
		__builtin_memcpy(key->v6.saddr, src, 16);
		__builtin_memcpy(key->v6.daddr, dst, 16);
	}
}

static __always_inline struct fqdnpath_ct_value *ct_lookup(const union ct_key *key,
							   const __u8 family)
{
	if (family == 4)
		return bpf_map_lookup_elem(&fqdn_ct4, &key->v4);
	return bpf_map_lookup_elem(&fqdn_ct6, &key->v6);
}

static __always_inline int ct_update(const union ct_key *key, const __u8 family,
				     const struct fqdnpath_ct_value *value)
{
	if (family == 4)
		return bpf_map_update_elem(&fqdn_ct4, &key->v4, value, BPF_ANY);
	return bpf_map_update_elem(&fqdn_ct6, &key->v6, value, BPF_ANY);
}

static __always_inline __u8 closing_flag(const struct packet *pkt)
{
	return (pkt->protocol == IPPROTO_TCP && (pkt->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST)))
		       ? FQDNPATH_CT_CLOSING
		       : 0;
}

/* A reply packet of the flow at key: renews it. Returns 1 if the flow exists and is live. */
static __always_inline int ct_reply(const union ct_key *key, const struct packet *pkt,
				    const __u8 family, __u64 now, int want_ingress)
{
	struct fqdnpath_ct_value *ct = ct_lookup(key, family);
	__u8 flags;

	if (!ct || now > ct->expires_ns)
		return 0;
	if (want_ingress && !(ct->flags & FQDNPATH_CT_INGRESS))
		return 0;
	flags = ct->flags | FQDNPATH_CT_ESTABLISHED | closing_flag(pkt);
	ct->flags = flags;
	ct->expires_ns = now + ct_lifetime(pkt->protocol, flags);
	return 1;
}

/* A packet in the opening direction of the flow at key: opens or renews it. */
static __always_inline int ct_track(const union ct_key *key, const struct packet *pkt,
				    const __u8 family, __u64 now, __u16 endpoint_id, __u32 remote,
				    __u8 ingress)
{
	struct fqdnpath_ct_value *ct = ct_lookup(key, family);
	struct fqdnpath_ct_value fresh = {
		.remote_identity = remote,
		.endpoint_id = endpoint_id,
		.flags = ingress ? FQDNPATH_CT_INGRESS : 0,
	};

	if (ct && now <= ct->expires_ns) {
		__u8 flags = ct->flags | closing_flag(pkt);

		ct->flags = flags;
		ct->expires_ns = now + ct_lifetime(pkt->protocol, flags);
		return 0;
	}
	fresh.flags |= closing_flag(pkt);
	fresh.expires_ns = now + ct_lifetime(pkt->protocol, fresh.flags);
	return ct_update(key, family, &fresh);
}

struct policy_hit {
	struct fqdnpath_policy_value *value;
	__u8 specific;
};

/* The endpoint's policy, as PolicyMap::lookup: the identity's own entries (a deny there wins
 * outright), then identity 0's; higher precedence, then the longer prefix, then the identity's. */
static __always_inline struct policy_hit policy_lookup(const struct fqdnpath_endpoint_value *ep,
						       __u32 identity, const struct packet *pkt)
{
	struct fqdnpath_policy_key key = {
		.prefixlen = FQDNPATH_POLICY_FULL_PREFIX,
		.endpoint_id = ep->endpoint_id,
		.egress = 1,
		.identity = identity,
		.protocol = pkt->protocol,
	};
	struct policy_hit hit = {0};
	struct fqdnpath_policy_value *l3 = 0, *l4;

	__builtin_memcpy(key.dport, &pkt->dport, 2);
	if (identity != 0) {
		l3 = bpf_map_lookup_elem(&fqdn_policy, &key);
		if (l3 && (l3->flags & FQDNPATH_POLICY_DENY)) {
			hit.value = l3;
			hit.specific = 1;
			return hit;
		}
	}
	/* No identity-0 entry for this endpoint: nothing to find there. */
	if (!(ep->flags & FQDNPATH_ENDPOINT_HAS_WILDCARD)) {
		hit.value = l3;
		hit.specific = 1;
		return hit;
	}
	key.identity = 0;
	l4 = bpf_map_lookup_elem(&fqdn_policy, &key);
	if (l3 && l4) {
		if (l4->precedence > l3->precedence ||
		    (l4->precedence == l3->precedence &&
		     l4->lpm_prefix_length > l3->lpm_prefix_length)) {
			hit.value = l4;
		} else {
			hit.value = l3;
			hit.specific = 1;
		}
	} else if (l3) {
		hit.value = l3;
		hit.specific = 1;
	} else {
		hit.value = l4;
	}
	return hit;
}

static __always_inline __u8 match_type(__u8 specific, __u8 len)
{
	if (specific)
		return len > 8 ? FQDNPATH_MATCH_L3_L4
			       : (len > 0 ? FQDNPATH_MATCH_L3_PROTO : FQDNPATH_MATCH_L3_ONLY);
	return len == 0 ? FQDNPATH_MATCH_ALL
			: (len <= 8 ? FQDNPATH_MATCH_PROTO_ONLY : FQDNPATH_MATCH_L4_ONLY);
}

/*
 * Puts the event into the ring buffer: reserved there and copied by the program (inlined
 * stores), where bpf_ringbuf_output would copy it with a kernel memcpy call.
 */
static __always_inline void emit(const struct fqdnpath_flow_event *ev)
{
	struct fqdnpath_flow_event *slot = bpf_ringbuf_reserve(&fqdn_events, sizeof(*ev), 0);

	if (!slot) {
		count(FQDNPATH_COUNTER_EVENTS_LOST);
		return;
	}
	__builtin_memcpy(slot, ev, sizeof(*ev));
	bpf_ringbuf_submit(slot, 0);
}

static __always_inline int finish(struct fqdnpath_flow_event *ev, const struct packet *pkt)
{
	ev->sport = pkt->sport;
	ev->dport = pkt->dport;
	ev->protocol = pkt->protocol;
	ev->family = pkt->family;
	ev->tcp_flags = pkt->tcp_flags;
	switch (ev->verdict) {
	case FQDNPATH_VERDICT_FORWARDED:
		count(FQDNPATH_COUNTER_FORWARDED);
		break;
	case FQDNPATH_VERDICT_REDIRECTED:
		count(FQDNPATH_COUNTER_REDIRECTED);
		break;
	default:
		count(FQDNPATH_COUNTER_DROPPED);
	}
	emit(ev);
	return ev->verdict == FQDNPATH_VERDICT_DROPPED ? TC_ACT_SHOT : TC_ACT_OK;
}

static __always_inline int drop(struct fqdnpath_flow_event *ev, const struct packet *pkt,
				__u8 reason)
{
	ev->verdict = FQDNPATH_VERDICT_DROPPED;
	ev->drop_reason = reason;
	return finish(ev, pkt);
}

/*
 * Judges a parsed egress IP packet of one family. Inlined once per family, with family a
 * constant, so that every map lookup has a call site of its own with one map: the verifier
 * then calls that map's lookup directly (or inlines it). A call site clang shares between the
 * IPv4 and the IPv6 map goes through the generic helper and an indirect call instead.
 */
static __always_inline int egress_ip(struct __sk_buff *skb, const struct fqdnpath_state *st,
				     const struct packet *pkt, struct fqdnpath_flow_event *ev,
				     __u64 now, const __u8 family)
{
	const struct fqdnpath_endpoint_value *ep;
	union ct_key key;
	struct policy_hit hit;
	__u32 remote;

	remote = ipcache_identity(family, ev->daddr);
	ev->dst_identity = remote;
	ep = endpoint(family, ev->saddr);
	if (!ep)
		return drop(ev, pkt, FQDNPATH_DROP_INVALID_SOURCE_IP);
	ev->endpoint_id = ep->endpoint_id;
	ev->src_identity = ep->identity;

	/* A reply to a flow the peer opened towards the endpoint passes. */
	if (st->flags & FQDNPATH_STATE_INGRESS_SEEN) {
		ct_key(&key, ev, pkt, family, 1);
		if (ct_reply(&key, pkt, family, now, 1)) {
			ev->verdict = FQDNPATH_VERDICT_FORWARDED;
			ev->is_reply = 1;
			return finish(ev, pkt);
		}
	}
	if ((st->flags & FQDNPATH_STATE_FAIL_CLOSED) || (ep->flags & FQDNPATH_ENDPOINT_FAIL_CLOSED))
		return drop(ev, pkt, FQDNPATH_DROP_POLICY_DENIED);

	hit = policy_lookup(ep, remote, pkt);
	if (!hit.value)
		return drop(ev, pkt, FQDNPATH_DROP_POLICY_DENIED);
	ev->policy_prefix_len = hit.value->lpm_prefix_length;
	ev->policy_specific = hit.specific;
	if (hit.value->flags & FQDNPATH_POLICY_DENY)
		return drop(ev, pkt, FQDNPATH_DROP_POLICY_DENY);
	ev->match_type = match_type(hit.specific, hit.value->lpm_prefix_length);
	if (hit.value->proxy_port) {
		ev->verdict = FQDNPATH_VERDICT_REDIRECTED;
		skb->mark = FQDNPATH_MARK_MAGIC_TO_PROXY |
			    ((__u32)bpf_ntohs(hit.value->proxy_port) << 16);
	} else {
		ev->verdict = FQDNPATH_VERDICT_FORWARDED;
	}
	ct_key(&key, ev, pkt, family, 0);
	if (ct_track(&key, pkt, family, now, ep->endpoint_id, remote, 0) < 0) {
		ev->match_type = FQDNPATH_MATCH_NONE;
		ev->policy_prefix_len = FQDNPATH_NO_POLICY_KEY;
		return drop(ev, pkt, FQDNPATH_DROP_CT_MAP_INSERTION_FAILED);
	}
	return finish(ev, pkt);
}

SEC("classifier")
int fqdnpath_egress(struct __sk_buff *skb)
{
	struct fqdnpath_state *st = state();
	struct fqdnpath_flow_event ev = {
		.egress = 1,
		.policy_prefix_len = FQDNPATH_NO_POLICY_KEY,
	};
	struct packet pkt = {0};
	__u64 now;
	int ret;

	if (!st)
		return TC_ACT_SHOT;
	now = now_ns(st);
	ev.ts_ns = now;
	ret = parse(skb, &pkt, &ev);
	if (ret == 1)
		return TC_ACT_OK; /* ARP */
	if (ret != 0)
		return drop(&ev, &pkt, ret);
	if (pkt.family == 4)
		return egress_ip(skb, st, &pkt, &ev, now, 4);
	return egress_ip(skb, st, &pkt, &ev, now, 6);
}

/*
 * Lets a parsed IP packet of one family in, towards an endpoint: ingress policy is not
 * enforced; replies renew their flow, and a flow the peer opens is tracked so that the
 * endpoint's answers pass as replies. Inlined once per family, as egress_ip.
 */
static __always_inline int ingress_ip(struct fqdnpath_state *st, const struct packet *pkt,
				      struct fqdnpath_flow_event *ev, __u64 now, const __u8 family)
{
	const struct fqdnpath_endpoint_value *ep;
	union ct_key key;
	__u32 remote;

	remote = ipcache_identity(family, ev->saddr);
	ev->src_identity = remote;
	ep = endpoint(family, ev->daddr);
	if (ep) {
		ev->endpoint_id = ep->endpoint_id;
		ev->dst_identity = ep->identity;
	}
	ev->verdict = FQDNPATH_VERDICT_FORWARDED;
	ct_key(&key, ev, pkt, family, 1);
	if (ct_reply(&key, pkt, family, now, 0)) {
		ev->is_reply = 1;
	} else if (ep) {
		ct_key(&key, ev, pkt, family, 0);
		if (ct_track(&key, pkt, family, now, ep->endpoint_id, remote, 1) == 0)
			__sync_fetch_and_or(&st->flags, FQDNPATH_STATE_INGRESS_SEEN);
	}
	return finish(ev, pkt);
}

SEC("classifier")
int fqdnpath_ingress(struct __sk_buff *skb)
{
	struct fqdnpath_state *st = state();
	struct fqdnpath_flow_event ev = {
		.egress = 0,
		.policy_prefix_len = FQDNPATH_NO_POLICY_KEY,
	};
	struct packet pkt = {0};
	__u64 now;
	int ret;

	if (!st)
		return TC_ACT_SHOT;
	now = now_ns(st);
	ev.ts_ns = now;
	ret = parse(skb, &pkt, &ev);
	if (ret == 1)
		return TC_ACT_OK;
	if (ret != 0)
		return drop(&ev, &pkt, ret);
	if (pkt.family == 4)
		return ingress_ip(st, &pkt, &ev, now, 4);
	return ingress_ip(st, &pkt, &ev, now, 6);
}

/* One IPv4 LPM lookup and one hash lookup, no parsing beyond the address: the floor the full
 * program's cost is compared with. */
SEC("classifier")
int fqdnpath_bare(struct __sk_buff *skb)
{
	struct fqdnpath_ipcache_key4 key = {.prefixlen = 32};
	struct fqdnpath_ipcache_value *value;
	__u32 identity = FQDNPATH_IDENTITY_WORLD;
	__u32 *hit;

	if (bpf_skb_load_bytes(skb, ETH_HLEN_ + 16, key.addr, 4) < 0)
		return TC_ACT_SHOT;
	value = bpf_map_lookup_elem(&fqdn_ipcache4, &key);
	if (value)
		identity = value->identity;
	hit = bpf_map_lookup_elem(&fqdn_bare_hash, &identity);
	return hit ? TC_ACT_OK : TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
