/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */
/*
 * The shape of every map with a key and a value: one BTF-defined map, as libbpf's
 * bpf_helpers.h spells it, declared in one line.
 */
#ifndef FQDNPATH_LIB_MAP_H
#define FQDNPATH_LIB_MAP_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/*
 * FQDNPATH_MAP(name, type, key, value, max_entries[, map_flags]) defines the map name in
 * section .maps. The loader (crates/kernel/src/load.rs) finds a map by its name and may
 * resize it: max_entries here is the size it has when nothing does.
 */
#define FQDNPATH_MAP(name, map_type, key_type, value_type, entries, ...)                           \
	struct {                                                                                   \
		__uint(type, map_type);                                                            \
		__type(key, key_type);                                                             \
		__type(value, value_type);                                                         \
		__uint(max_entries, entries);                                                      \
		__VA_OPT__(__uint(map_flags, __VA_ARGS__);)                                        \
	} name SEC(".maps")

#endif /* FQDNPATH_LIB_MAP_H */
