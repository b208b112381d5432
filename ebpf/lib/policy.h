/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */
/*
 * The policy map, one LPM trie keyed by (endpoint, direction, identity, protocol, port) as
 * Cilium's policy maps, and its lookup with Cilium's precedence.
 */
#ifndef FQDNPATH_LIB_POLICY_H
#define FQDNPATH_LIB_POLICY_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "../include/fqdnpath_abi.h"
#include "map.h"
#include "parse.h"

/* Sized by the loader (MapSizes). */
FQDNPATH_MAP(fqdn_policy, BPF_MAP_TYPE_LPM_TRIE, struct fqdnpath_policy_key,
	     struct fqdnpath_policy_value, 65536, BPF_F_NO_PREALLOC);

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

#endif /* FQDNPATH_LIB_POLICY_H */
