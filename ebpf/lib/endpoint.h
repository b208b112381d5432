/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */
/*
 * The endpoints of this node: one hash map per family from address to endpoint (its id,
 * identity and flags), and a per-CPU cache of the last one found.
 */
#ifndef FQDNPATH_LIB_ENDPOINT_H
#define FQDNPATH_LIB_ENDPOINT_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "../include/fqdnpath_abi.h"
#include "map.h"

FQDNPATH_MAP(fqdn_endpoints4, BPF_MAP_TYPE_HASH, struct fqdnpath_endpoint_key4,
	     struct fqdnpath_endpoint_value, 1024);
FQDNPATH_MAP(fqdn_endpoints6, BPF_MAP_TYPE_HASH, struct fqdnpath_endpoint_key6,
	     struct fqdnpath_endpoint_value, 1024);

/*
 * The generation of the endpoint maps: userspace bumps it after every change to them, so that
 * a CPU's cached endpoint (fqdn_endpoint_cache) is used only while it is current.
 */
FQDNPATH_MAP(fqdn_endpoints_gen, BPF_MAP_TYPE_ARRAY, __u32, __u64, 1);

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

FQDNPATH_MAP(fqdn_endpoint_cache, BPF_MAP_TYPE_PERCPU_ARRAY, __u32, struct endpoint_cache, 1);

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

#endif /* FQDNPATH_LIB_ENDPOINT_H */
