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
	__type(key, struct fqdnpath_endpoint_key);
	__type(value, struct fqdnpath_endpoint_value);
	__uint(max_entries, 1024);
} fqdn_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct fqdnpath_ct_key);
	__type(value, struct fqdnpath_ct_value);
	__uint(max_entries, 262144);
} fqdn_ct SEC(".maps");

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
 * Copies len bytes at off out of the packet: straight from the linear data when they are
 * there (the common case, and several times cheaper), else through bpf_skb_load_bytes.
 */
static __always_inline int load(struct __sk_buff *skb, __u32 off, void *to, __u32 len)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	if (off <= 512 && data + off + len <= data_end) {
		__builtin_memcpy(to, data + off, len);
		return 0;
	}
	return bpf_skb_load_bytes(skb, off, to, len);
}

/*
 * Reads the transport ports (and TCP flags) at l4_off. Protocols without ports get port 0.
 * Returns 0 or a drop reason.
 */
static __always_inline int parse_l4(struct __sk_buff *skb, __u32 l4_off, struct packet *pkt)
{
	__u8 l4[14];

	switch (pkt->protocol) {
	case IPPROTO_TCP:
		/* Ports and the flags byte. */
		if (load(skb, l4_off, l4, 14) < 0)
			return FQDNPATH_DROP_CT_INVALID_HDR;
		pkt->tcp_flags = l4[13];
		break;
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		if (load(skb, l4_off, l4, 4) < 0)
			return FQDNPATH_DROP_CT_INVALID_HDR;
		break;
	default:
		return 0;
	}
	__builtin_memcpy(&pkt->sport, &l4[0], 2);
	__builtin_memcpy(&pkt->dport, &l4[2], 2);
	return 0;
}

static __always_inline int parse_ipv4(struct __sk_buff *skb, struct packet *pkt,
				      struct fqdnpath_flow_event *ev)
{
	__u8 ip[20];
	__u32 ihl;

	if (load(skb, ETH_HLEN_, ip, sizeof(ip)) < 0)
		return FQDNPATH_DROP_INVALID;
	ihl = (ip[0] & 0x0f) * 4;
	if ((ip[0] >> 4) != 4 || ihl < 20)
		return FQDNPATH_DROP_INVALID;
	pkt->family = 4;
	pkt->protocol = ip[9];
	__builtin_memcpy(ev->saddr, &ip[12], 4);
	__builtin_memcpy(ev->daddr, &ip[16], 4);
	/* A fragment other than the first carries no transport header. */
	if (((ip[6] & 0x1f) | ip[7]) != 0)
		return FQDNPATH_DROP_FRAG_NOSUPPORT;
	return parse_l4(skb, ETH_HLEN_ + ihl, pkt);
}

static __always_inline int parse_ipv6(struct __sk_buff *skb, struct packet *pkt,
				      struct fqdnpath_flow_event *ev)
{
	__u8 ip[IPV6_HLEN];
	__u32 off = ETH_HLEN_ + IPV6_HLEN;
	__u8 nexthdr;
	int i;

	if (load(skb, ETH_HLEN_, ip, sizeof(ip)) < 0)
		return FQDNPATH_DROP_INVALID;
	if ((ip[0] >> 4) != 6)
		return FQDNPATH_DROP_INVALID;
	pkt->family = 6;
	nexthdr = ip[6];
	__builtin_memcpy(ev->saddr, &ip[8], 16);
	__builtin_memcpy(ev->daddr, &ip[24], 16);

	/* The common extension headers, at most IPV6_MAX_HEADERS of them, as Cilium. */
#pragma unroll
	for (i = 0; i < IPV6_MAX_HEADERS; i++) {
		__u8 opt[8];

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
		if (load(skb, off, opt, sizeof(opt)) < 0)
			return FQDNPATH_DROP_INVALID;
		if (nexthdr == NEXTHDR_FRAGMENT) {
			/* Fragment offset (13 bits) other than 0: no transport header. */
			if (((opt[2] << 5) | (opt[3] >> 3)) != 0)
				return FQDNPATH_DROP_FRAG_NOSUPPORT;
			off += 8;
		} else if (nexthdr == NEXTHDR_AUTH) {
			off += ((__u32)opt[1] + 2) * 4;
		} else {
			off += ((__u32)opt[1] + 1) * 8;
		}
		nexthdr = opt[0];
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
	__be16 proto;

	if (load(skb, 12, &proto, sizeof(proto)) < 0)
		return FQDNPATH_DROP_INVALID;
	switch (proto) {
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

static __always_inline __u32 ipcache_identity(__u8 family, const __u8 *addr)
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

static __always_inline struct fqdnpath_endpoint_value *endpoint(__u8 family, const __u8 *addr)
{
	struct fqdnpath_endpoint_key key = {.family = family};

	__builtin_memcpy(key.addr, addr, 16);
	return bpf_map_lookup_elem(&fqdn_endpoints, &key);
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

static __always_inline void ct_key(struct fqdnpath_ct_key *key,
				   const struct fqdnpath_flow_event *ev, const struct packet *pkt,
				   int reversed)
{
	if (reversed) {
		__builtin_memcpy(key->saddr, ev->daddr, 16);
		__builtin_memcpy(key->daddr, ev->saddr, 16);
		key->sport = pkt->dport;
		key->dport = pkt->sport;
	} else {
		__builtin_memcpy(key->saddr, ev->saddr, 16);
		__builtin_memcpy(key->daddr, ev->daddr, 16);
		key->sport = pkt->sport;
		key->dport = pkt->dport;
	}
	key->protocol = pkt->protocol;
	key->family = pkt->family;
}

static __always_inline __u8 closing_flag(const struct packet *pkt)
{
	return (pkt->protocol == IPPROTO_TCP && (pkt->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST)))
		       ? FQDNPATH_CT_CLOSING
		       : 0;
}

/* A reply packet of the flow at key: renews it. Returns 1 if the flow exists and is live. */
static __always_inline int ct_reply(const struct fqdnpath_ct_key *key, const struct packet *pkt,
				    __u64 now, int want_ingress)
{
	struct fqdnpath_ct_value *ct = bpf_map_lookup_elem(&fqdn_ct, key);
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
static __always_inline int ct_track(const struct fqdnpath_ct_key *key, const struct packet *pkt,
				    __u64 now, __u16 endpoint_id, __u32 remote, __u8 ingress)
{
	struct fqdnpath_ct_value *ct = bpf_map_lookup_elem(&fqdn_ct, key);
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
	return bpf_map_update_elem(&fqdn_ct, key, &fresh, BPF_ANY);
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
	if (bpf_ringbuf_output(&fqdn_events, ev, sizeof(*ev), 0) < 0)
		count(FQDNPATH_COUNTER_EVENTS_LOST);
	return ev->verdict == FQDNPATH_VERDICT_DROPPED ? TC_ACT_SHOT : TC_ACT_OK;
}

static __always_inline int drop(struct fqdnpath_flow_event *ev, const struct packet *pkt,
				__u8 reason)
{
	ev->verdict = FQDNPATH_VERDICT_DROPPED;
	ev->drop_reason = reason;
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
	struct fqdnpath_endpoint_value *ep;
	struct fqdnpath_ct_key key = {0};
	struct policy_hit hit;
	__u32 remote;
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

	remote = ipcache_identity(pkt.family, ev.daddr);
	ev.dst_identity = remote;
	ep = endpoint(pkt.family, ev.saddr);
	if (!ep)
		return drop(&ev, &pkt, FQDNPATH_DROP_INVALID_SOURCE_IP);
	ev.endpoint_id = ep->endpoint_id;
	ev.src_identity = ep->identity;

	/* A reply to a flow the peer opened towards the endpoint passes. */
	if (st->flags & FQDNPATH_STATE_INGRESS_SEEN) {
		ct_key(&key, &ev, &pkt, 1);
		if (ct_reply(&key, &pkt, now, 1)) {
			ev.verdict = FQDNPATH_VERDICT_FORWARDED;
			ev.is_reply = 1;
			return finish(&ev, &pkt);
		}
	}
	if ((st->flags & FQDNPATH_STATE_FAIL_CLOSED) || (ep->flags & FQDNPATH_ENDPOINT_FAIL_CLOSED))
		return drop(&ev, &pkt, FQDNPATH_DROP_POLICY_DENIED);

	hit = policy_lookup(ep, remote, &pkt);
	if (!hit.value)
		return drop(&ev, &pkt, FQDNPATH_DROP_POLICY_DENIED);
	ev.policy_prefix_len = hit.value->lpm_prefix_length;
	ev.policy_specific = hit.specific;
	if (hit.value->flags & FQDNPATH_POLICY_DENY)
		return drop(&ev, &pkt, FQDNPATH_DROP_POLICY_DENY);
	ev.match_type = match_type(hit.specific, hit.value->lpm_prefix_length);
	if (hit.value->proxy_port) {
		ev.verdict = FQDNPATH_VERDICT_REDIRECTED;
		skb->mark = FQDNPATH_MARK_MAGIC_TO_PROXY |
			    ((__u32)bpf_ntohs(hit.value->proxy_port) << 16);
	} else {
		ev.verdict = FQDNPATH_VERDICT_FORWARDED;
	}
	ct_key(&key, &ev, &pkt, 0);
	if (ct_track(&key, &pkt, now, ep->endpoint_id, remote, 0) < 0) {
		ev.match_type = FQDNPATH_MATCH_NONE;
		ev.policy_prefix_len = FQDNPATH_NO_POLICY_KEY;
		return drop(&ev, &pkt, FQDNPATH_DROP_CT_MAP_INSERTION_FAILED);
	}
	return finish(&ev, &pkt);
}

/*
 * Packets towards an endpoint: ingress policy is not enforced; replies renew their flow, and
 * a flow the peer opens is tracked so that the endpoint's answers pass as replies.
 */
SEC("classifier")
int fqdnpath_ingress(struct __sk_buff *skb)
{
	struct fqdnpath_state *st = state();
	struct fqdnpath_flow_event ev = {
		.egress = 0,
		.policy_prefix_len = FQDNPATH_NO_POLICY_KEY,
	};
	struct packet pkt = {0};
	struct fqdnpath_endpoint_value *ep;
	struct fqdnpath_ct_key key = {0};
	__u32 remote;
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

	remote = ipcache_identity(pkt.family, ev.saddr);
	ev.src_identity = remote;
	ep = endpoint(pkt.family, ev.daddr);
	if (ep) {
		ev.endpoint_id = ep->endpoint_id;
		ev.dst_identity = ep->identity;
	}
	ev.verdict = FQDNPATH_VERDICT_FORWARDED;
	ct_key(&key, &ev, &pkt, 1);
	if (ct_reply(&key, &pkt, now, 0)) {
		ev.is_reply = 1;
	} else if (ep) {
		ct_key(&key, &ev, &pkt, 0);
		if (ct_track(&key, &pkt, now, ep->endpoint_id, remote, 1) == 0)
			__sync_fetch_and_or(&st->flags, FQDNPATH_STATE_INGRESS_SEEN);
	}
	return finish(&ev, &pkt);
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
