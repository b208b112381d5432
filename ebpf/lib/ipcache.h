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
