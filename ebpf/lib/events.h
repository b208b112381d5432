/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */
/*
 * What a verdict leaves behind: a per-CPU counter per verdict, and a flow event in the ring
 * buffer (counted as lost when it has no room).
 */
#ifndef FQDNPATH_LIB_EVENTS_H
#define FQDNPATH_LIB_EVENTS_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "../include/fqdnpath_abi.h"
#include "map.h"
#include "parse.h"

FQDNPATH_MAP(fqdn_counters, BPF_MAP_TYPE_PERCPU_ARRAY, __u32, __u64, FQDNPATH_COUNTER_MAX);

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} fqdn_events SEC(".maps");

static __always_inline void count(__u32 index)
{
	__u64 *counter = bpf_map_lookup_elem(&fqdn_counters, &index);

	if (counter)
		*counter += 1;
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

#endif /* FQDNPATH_LIB_EVENTS_H */
