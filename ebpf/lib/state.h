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

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct fqdnpath_state);
	__uint(max_entries, 1);
} fqdn_state SEC(".maps");

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
