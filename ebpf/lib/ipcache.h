/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */
/*
 * The ipcache: one LPM trie per family from address to identity, as Cilium's
 * cilium_ipcache_v2. An address it does not hold is the world.
 */
#ifndef FQDNPATH_LIB_IPCACHE_H
#define FQDNPATH_LIB_IPCACHE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "../include/fqdnpath_abi.h"
#include "map.h"

/* Sizes are set by the loader (MapSizes); these are Cilium's defaults. */
FQDNPATH_MAP(fqdn_ipcache4, BPF_MAP_TYPE_LPM_TRIE, struct fqdnpath_ipcache_key4,
	     struct fqdnpath_ipcache_value, 512000, BPF_F_NO_PREALLOC);
FQDNPATH_MAP(fqdn_ipcache6, BPF_MAP_TYPE_LPM_TRIE, struct fqdnpath_ipcache_key6,
	     struct fqdnpath_ipcache_value, 512000, BPF_F_NO_PREALLOC);

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

#endif /* FQDNPATH_LIB_IPCACHE_H */
