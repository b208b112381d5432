/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */
/*
 * Parsing: Ethernet, then IPv4 or IPv6 (with the extension headers Cilium walks), then the
 * transport ports and TCP flags, into a struct packet and the flow event's addresses, as
 * crates/datapath/src/frame.rs parses. A packet that cannot be parsed gets Cilium's drop
 * reason.
 */
#ifndef FQDNPATH_LIB_PARSE_H
#define FQDNPATH_LIB_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "../include/fqdnpath_abi.h"

#define ETH_HLEN_ 14
#define IPV6_HLEN 40
#define IPV6_MAX_HEADERS 4

#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_AUTH 51
#define NEXTHDR_NONE 59
#define NEXTHDR_DEST 60

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_RST 0x04

/* What the parser extracts; the event is filled from it. */
struct packet {
	__u8 family; /* 0: not parsed as IP */
	__u8 protocol;
	__u8 tcp_flags;
	__u8 pad;
	__be16 sport;
	__be16 dport;
};

/*
 * The len bytes at off: a pointer into the packet when they are in its linear data (the
 * common case), else into buf, filled by bpf_skb_load_bytes; NULL when the packet is shorter.
 * Callers read the header through a typed pointer, so that clang emits word loads: copying
 * packet bytes with memcpy makes it load them one by one (their alignment is unknown).
 */
static __always_inline const void *header(struct __sk_buff *skb, __u32 off, void *buf, __u32 len)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	if (off <= 512 && data + off + len <= data_end)
		return data + off;
	if (bpf_skb_load_bytes(skb, off, buf, len) < 0)
		return 0;
	return buf;
}

/* The ports of TCP, UDP and SCTP: the first 4 bytes of their headers. */
struct ports {
	__be16 sport;
	__be16 dport;
};

/* The first 14 bytes of a TCP header: the ports and the flags byte. */
struct tcp_head {
	struct ports ports;
	__u8 seq_ack_off[9];
	__u8 flags;
};

/* The start of an IPv6 extension header. */
struct ext_head {
	__u8 nexthdr;
	__u8 len;
	__be16 frag_off; /* fragment headers: offset (13 bits), then flags */
	__u8 rest[4];
};

static __always_inline void set_ports(struct packet *pkt, const struct ports *ports)
{
	pkt->sport = ports->sport;
	pkt->dport = ports->dport;
}

/*
 * Reads the transport ports (and TCP flags) at l4_off. Protocols without ports get port 0.
 * Returns 0 or a drop reason.
 */
static __always_inline int parse_l4(struct __sk_buff *skb, __u32 l4_off, struct packet *pkt)
{
	const struct tcp_head *tcp;
	const struct ports *ports;
	union {
		struct tcp_head tcp;
		struct ports ports;
	} buf;

	switch (pkt->protocol) {
	case IPPROTO_TCP:
		tcp = header(skb, l4_off, &buf.tcp, sizeof(buf.tcp));
		if (!tcp)
			return FQDNPATH_DROP_CT_INVALID_HDR;
		set_ports(pkt, &tcp->ports);
		pkt->tcp_flags = tcp->flags;
		return 0;
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		ports = header(skb, l4_off, &buf.ports, sizeof(buf.ports));
		if (!ports)
			return FQDNPATH_DROP_CT_INVALID_HDR;
		set_ports(pkt, ports);
		return 0;
	default:
		return 0;
	}
}

static __always_inline int parse_ipv4(struct __sk_buff *skb, struct packet *pkt,
				      struct fqdnpath_flow_event *ev)
{
	struct iphdr buf;
	const struct iphdr *ip = header(skb, ETH_HLEN_, &buf, sizeof(buf));
	__u32 ihl;

	if (!ip || ip->version != 4 || ip->ihl < 5)
		return FQDNPATH_DROP_INVALID;
	ihl = ip->ihl * 4;
	pkt->family = 4;
	pkt->protocol = ip->protocol;
	__builtin_memcpy(ev->saddr, &ip->saddr, 4);
	__builtin_memcpy(ev->daddr, &ip->daddr, 4);
	/* A fragment other than the first carries no transport header. */
	if (ip->frag_off & bpf_htons(0x1fff))
		return FQDNPATH_DROP_FRAG_NOSUPPORT;
	return parse_l4(skb, ETH_HLEN_ + ihl, pkt);
}

static __always_inline int parse_ipv6(struct __sk_buff *skb, struct packet *pkt,
				      struct fqdnpath_flow_event *ev)
{
	struct ipv6hdr buf;
	const struct ipv6hdr *ip = header(skb, ETH_HLEN_, &buf, sizeof(buf));
	__u32 off = ETH_HLEN_ + IPV6_HLEN;
	__u8 nexthdr;
	int i;

	if (!ip || ip->version != 6)
		return FQDNPATH_DROP_INVALID;
	pkt->family = 6;
	nexthdr = ip->nexthdr;
	__builtin_memcpy(ev->saddr, &ip->saddr, 16);
	__builtin_memcpy(ev->daddr, &ip->daddr, 16);

	/* The common extension headers, at most IPV6_MAX_HEADERS of them, as Cilium. */
#pragma unroll
	for (i = 0; i < IPV6_MAX_HEADERS; i++) {
		struct ext_head ext_buf;
		const struct ext_head *ext;

		switch (nexthdr) {
		case NEXTHDR_NONE:
			return FQDNPATH_DROP_INVALID_EXTHDR;
		case NEXTHDR_HOP:
		case NEXTHDR_ROUTING:
		case NEXTHDR_DEST:
		case NEXTHDR_AUTH:
		case NEXTHDR_FRAGMENT:
			break;
		default:
			pkt->protocol = nexthdr;
			return parse_l4(skb, off, pkt);
		}
		ext = header(skb, off, &ext_buf, sizeof(ext_buf));
		if (!ext)
			return FQDNPATH_DROP_INVALID;
		if (nexthdr == NEXTHDR_FRAGMENT) {
			/* Fragment offset (13 bits) other than 0: no transport header. */
			if (ext->frag_off & bpf_htons(0xfff8))
				return FQDNPATH_DROP_FRAG_NOSUPPORT;
			off += 8;
		} else if (nexthdr == NEXTHDR_AUTH) {
			off += ((__u32)ext->len + 2) * 4;
		} else {
			off += ((__u32)ext->len + 1) * 8;
		}
		nexthdr = ext->nexthdr;
	}
	switch (nexthdr) {
	case NEXTHDR_NONE:
	case NEXTHDR_HOP:
	case NEXTHDR_ROUTING:
	case NEXTHDR_DEST:
	case NEXTHDR_AUTH:
	case NEXTHDR_FRAGMENT:
		/* More extension headers than Cilium walks. */
		return FQDNPATH_DROP_INVALID_EXTHDR;
	}
	pkt->protocol = nexthdr;
	return parse_l4(skb, off, pkt);
}

/*
 * Parses the frame into pkt and the event's addresses. Returns 0 for an IP packet, 1 for an
 * ARP frame (passed unjudged), or a drop reason.
 */
static __always_inline int parse(struct __sk_buff *skb, struct packet *pkt,
				 struct fqdnpath_flow_event *ev)
{
	__be16 buf;
	const __be16 *proto = header(skb, 12, &buf, sizeof(buf));

	if (!proto)
		return FQDNPATH_DROP_INVALID;
	switch (*proto) {
	case bpf_htons(ETH_P_IP):
		return parse_ipv4(skb, pkt, ev);
	case bpf_htons(ETH_P_IPV6):
		return parse_ipv6(skb, pkt, ev);
	case bpf_htons(ETH_P_ARP):
		return 1;
	default:
		return FQDNPATH_DROP_UNKNOWN_L3;
	}
}

#endif /* FQDNPATH_LIB_PARSE_H */
