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
 *
 * This file holds the programs' entry points; the pieces live in lib/, one header per
 * concern with its maps: parse.h (Ethernet, IPv4, IPv6, ports), ipcache.h, policy.h,
 * endpoint.h, conntrack.h, state.h (clock and flags) and events.h (counters, flow events),
 * each map defined with map.h's FQDNPATH_MAP.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "include/fqdnpath_abi.h"
#include "lib/parse.h"
#include "lib/ipcache.h"
#include "lib/policy.h"
#include "lib/endpoint.h"
#include "lib/conntrack.h"
#include "lib/state.h"
#include "lib/events.h"

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

char LICENSE[] SEC("license") = "Dual MIT/GPL";
