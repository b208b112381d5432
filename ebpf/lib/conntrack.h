/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */
/*
 * Conntrack: one LRU hash per family, as Cilium's cilium_ct4_global and cilium_ct6_global,
 * with the model's lifetimes (crates/datapath/src/conntrack.rs).
 */
#ifndef FQDNPATH_LIB_CONNTRACK_H
#define FQDNPATH_LIB_CONNTRACK_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "../include/fqdnpath_abi.h"
#include "map.h"
#include "parse.h"

/* Sized by the loader (MapSizes). */
FQDNPATH_MAP(fqdn_ct4, BPF_MAP_TYPE_LRU_HASH, struct fqdnpath_ct_key4, struct fqdnpath_ct_value,
	     262144);
FQDNPATH_MAP(fqdn_ct6, BPF_MAP_TYPE_LRU_HASH, struct fqdnpath_ct_key6, struct fqdnpath_ct_value,
	     262144);

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
			.sport = sport, .dport = dport, .protocol = pkt->protocol};
		__builtin_memcpy(key->v4.saddr, src, 4);
		__builtin_memcpy(key->v4.daddr, dst, 4);
	} else {
		key->v6 = (struct fqdnpath_ct_key6){
			.sport = sport, .dport = dport, .protocol = pkt->protocol};
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

#endif /* FQDNPATH_LIB_CONNTRACK_H */
