/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */
/*
 * The program's state, written from userspace: its flags (fail closed, virtual clock, ingress
 * seen) and, with the virtual clock, the time.
 */
#ifndef FQDNPATH_LIB_STATE_H
#define FQDNPATH_LIB_STATE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "../include/fqdnpath_abi.h"
#include "map.h"

FQDNPATH_MAP(fqdn_state, BPF_MAP_TYPE_ARRAY, __u32, struct fqdnpath_state, 1);

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

#endif /* FQDNPATH_LIB_STATE_H */
