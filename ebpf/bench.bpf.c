// SPDX-License-Identifier: (GPL-2.0 OR MIT)
/*
 * Bench-only baselines, compiled into an object of their own (bench.bpf.o) so that the
 * production object does not carry them. benches/kernel.rs measures the full program against
 * fqdnpath_bare, with this object's ipcache filled as the datapath's.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "include/fqdnpath_abi.h"
#include "lib/map.h"
#include "lib/parse.h"
#include "lib/ipcache.h"

/* The bare lookups the full program is measured against (benches/kernel.rs). */
FQDNPATH_MAP(fqdn_bare_hash, BPF_MAP_TYPE_HASH, __u32, __u32, 1024);

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
