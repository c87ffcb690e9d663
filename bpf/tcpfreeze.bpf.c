// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * TcpFreeze kernel programs: an ingress program (XDP, or a TC clsact ingress
 * filter that coexists with another tool's XDP program) and a TC (clsact)
 * egress program that drop the TCP segments of frozen connections and of
 * frozen local endpoints, and let every other packet through untouched, plus a
 * TC ingress and egress pair for L3 devices, whose frames start at the IP
 * header. All share one parser and one lookup, so every hook gives the same
 * verdict on the same segment.
 *
 * Dropping in both directions keeps both ends silent: the peer's segments never
 * reach the socket (so no RST is sent for a socket that is being checkpointed)
 * and the local stack's segments never leave. Egress drops are reported to the
 * stack as sent (TC_ACT_STOLEN), not as dropped (TC_ACT_SHOT): TCP retries a
 * segment that its own host dropped every 500 ms without backing off and counts
 * every try, so a writing socket would give up (ETIMEDOUT) after tcp_retries2
 * tries, about 7.5 s into a freeze. A segment it believes sent is retransmitted
 * with the normal exponential back-off instead, and the socket survives any
 * freeze shorter than its own retransmission timeout (about 15 minutes with the
 * default tcp_retries2, or TCP_USER_TIMEOUT when the application set one).
 *
 * Every drop of a data segment records its sequence number in the entry, for the
 * resume kick that a thaw sends (see struct tf_entry).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "tcpfreeze.h"

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

/* How many IPv6 extension headers we walk before giving up (and passing). */
#define TF_MAX_IPV6_EXT_HEADERS 6
/* How many bytes of an skb the TC programs make linear before parsing. */
#define TF_SKB_PULL_BYTES 256

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct tf_conn_key);
	__type(value, struct tf_entry);
} tf_connections SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct tf_endpoint_key);
	__type(value, struct tf_entry);
} tf_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tf_config);
} tf_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TF_COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} tf_counters SEC(".maps");

/* The addresses and ports of one parsed TCP segment, as they are on the wire. */
struct tf_segment {
	__u8 family;
	__u8 consumes_seq;	/* carries data, SYN or FIN */
	__be16 sport;
	__be16 dport;
	__be32 seq;
	__u8 saddr[16];
	__u8 daddr[16];
};

struct vlan_hdr_compat {
	__be16 tci;
	__be16 encapsulated_proto;
};

static __always_inline void count(__u32 index)
{
	__u64 *value = bpf_map_lookup_elem(&tf_counters, &index);

	if (value)
		*value += 1;
}

/*
 * Parses an IP packet of protocol proto (an ETH_P_* value, network order) that
 * starts at cursor inside the frame [data, data_end): IPv4 (any header length,
 * first fragments only) or IPv6 (walking the common extension headers), and the
 * TCP ports. Returns 0 when seg holds a TCP segment, -1 for anything else, which
 * the callers pass. Ethernet frames come through parse_tcp; frames of L3
 * devices, which start at the IP header, come here directly.
 */
static __always_inline int parse_ip_tcp(void *data, void *cursor, void *data_end, __be16 proto, struct tf_segment *seg)
{
	__u8 l4proto;
	__u32 ip_end;	/* offset from data of the end of the IP packet */

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = cursor;

		if ((void *)(ip + 1) > data_end)
			return -1;
		if (ip->version != 4 || ip->ihl < 5 || ip->protocol != IPPROTO_TCP)
			return -1;
		/* A non-first fragment carries no TCP header. */
		if (ip->frag_off & bpf_htons(0x1FFF))
			return -1;
		seg->family = TF_FAMILY_IPV4;
		ip_end = (__u32)((void *)ip - data) + bpf_ntohs(ip->tot_len);
		__builtin_memcpy(seg->saddr, &ip->saddr, 4);
		__builtin_memcpy(seg->daddr, &ip->daddr, 4);
		cursor = (void *)ip + ip->ihl * 4;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = cursor;

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		if (ip6->version != 6)
			return -1;
		seg->family = TF_FAMILY_IPV6;
		ip_end = (__u32)((void *)(ip6 + 1) - data) + bpf_ntohs(ip6->payload_len);
		__builtin_memcpy(seg->saddr, &ip6->saddr, 16);
		__builtin_memcpy(seg->daddr, &ip6->daddr, 16);
		l4proto = ip6->nexthdr;
		cursor = ip6 + 1;

#pragma unroll
		for (int i = 0; i < TF_MAX_IPV6_EXT_HEADERS; i++) {
			__u8 *ext = cursor;
			__u32 length;

			if (l4proto == IPPROTO_TCP)
				break;
			if ((void *)(ext + 8) > data_end)
				return -1;
			switch (l4proto) {
			case IPPROTO_HOPOPTS:
			case IPPROTO_ROUTING:
			case IPPROTO_DSTOPTS:
				length = ((__u32)ext[1] + 1) * 8;
				break;
			case IPPROTO_FRAGMENT:
				/* Offset bits set: not the first fragment, no TCP header. */
				if ((ext[2] << 8 | ext[3]) & 0xFFF8)
					return -1;
				length = 8;
				break;
			case IPPROTO_AH:
				length = ((__u32)ext[1] + 2) * 4;
				break;
			default:
				return -1;
			}
			l4proto = ext[0];
			cursor = ext + length;
		}
		if (l4proto != IPPROTO_TCP)
			return -1;
	} else {
		return -1;
	}

	struct tcphdr *tcp = cursor;

	if ((void *)(tcp + 1) > data_end)
		return -1;
	seg->sport = tcp->source;
	seg->dport = tcp->dest;
	seg->seq = tcp->seq;
	/*
	 * Payload length from the IP length fields (a GSO skb's are those of the
	 * whole super-packet; an IPv6 jumbogram's is 0 and counts as no data).
	 */
	__u32 tcp_end = (__u32)((void *)tcp - data) + tcp->doff * 4;

	seg->consumes_seq = tcp->syn || tcp->fin || ip_end > tcp_end;
	return 0;
}

/*
 * Parses an Ethernet frame (with up to two VLAN tags) down to the TCP ports, as
 * parse_ip_tcp says.
 */
static __always_inline int parse_tcp(void *data, void *data_end, struct tf_segment *seg)
{
	struct ethhdr *eth = data;
	void *cursor = data + sizeof(*eth);
	__be16 proto;

	if (cursor > data_end)
		return -1;
	proto = eth->h_proto;

#pragma unroll
	for (int i = 0; i < 2; i++) {
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		struct vlan_hdr_compat *vlan = cursor;

		if ((void *)(vlan + 1) > data_end)
			return -1;
		proto = vlan->encapsulated_proto;
		cursor = vlan + 1;
	}
	return parse_ip_tcp(data, cursor, data_end, proto, seg);
}

/* True while an entry's lease (if any) has not ended at now. */
static __always_inline int entry_active(struct tf_entry *entry, __u64 now)
{
	return entry->deadline_ns == 0 || now < entry->deadline_ns;
}

/*
 * Counts a drop for a frozen entry and records what the resume kick needs. The
 * stores race between CPUs; any one of the racing segments is a good answer.
 */
static __always_inline void record_drop(struct tf_entry *entry, struct tf_segment *seg, int ingress, __u64 now)
{
	__sync_fetch_and_add(&entry->dropped, 1);
	if (!entry->first_drop_ns)
		entry->first_drop_ns = now;
	if (!seg->consumes_seq)
		return;
	if (ingress) {
		entry->remote_seq = seg->seq;
		__sync_fetch_and_add(&entry->remote_data_drops, 1);
	} else {
		entry->local_seq = seg->seq;
		__sync_fetch_and_add(&entry->local_data_drops, 1);
	}
}

/*
 * Looks the segment up from the host's point of view: for ingress the local
 * side is the destination, for egress the source. Returns 1 to drop.
 */
static __always_inline int should_drop(struct tf_segment *seg, int ingress)
{
	struct tf_conn_key conn = {};
	struct tf_endpoint_key endpoint = {};
	struct tf_entry *entry;

	conn.family = seg->family;
	if (ingress) {
		conn.local_port = seg->dport;
		conn.remote_port = seg->sport;
		__builtin_memcpy(conn.local_addr, seg->daddr, 16);
		__builtin_memcpy(conn.remote_addr, seg->saddr, 16);
	} else {
		conn.local_port = seg->sport;
		conn.remote_port = seg->dport;
		__builtin_memcpy(conn.local_addr, seg->saddr, 16);
		__builtin_memcpy(conn.remote_addr, seg->daddr, 16);
	}

	__u64 now = bpf_ktime_get_ns();

	entry = bpf_map_lookup_elem(&tf_connections, &conn);
	if (entry && entry_active(entry, now)) {
		record_drop(entry, seg, ingress, now);
		return 1;
	}

	__u32 zero = 0;
	struct tf_config *config = bpf_map_lookup_elem(&tf_config, &zero);

	if (!config || !config->endpoints_present)
		return 0;

	endpoint.family = conn.family;
	endpoint.port = conn.local_port;
	__builtin_memcpy(endpoint.addr, conn.local_addr, 16);
	entry = bpf_map_lookup_elem(&tf_endpoints, &endpoint);
	if (!entry) {
		__builtin_memset(endpoint.addr, 0, 16);
		entry = bpf_map_lookup_elem(&tf_endpoints, &endpoint);
	}
	if (entry && entry_active(entry, now)) {
		record_drop(entry, seg, ingress, now);
		return 1;
	}
	return 0;
}

/*
 * The verdict on one frame whose headers lie in [data, data_end): 1 to drop,
 * counted as a drop in its direction; 0 to pass (not TCP, unparseable, or not
 * frozen: fail open). ingress says which side of the segment is this host.
 * l3_proto is 0 for an Ethernet frame; for a frame of an L3 device, which
 * starts at the IP header, it is the frame's protocol (skb->protocol).
 */
static __always_inline int frame_is_frozen(void *data, void *data_end, int ingress, __be16 l3_proto)
{
	struct tf_segment seg = {};
	int parsed = l3_proto ? parse_ip_tcp(data, data, data_end, l3_proto, &seg) : parse_tcp(data, data_end, &seg);

	if (parsed != 0)
		return 0;
	count(TF_COUNTER_SEEN);
	if (!should_drop(&seg, ingress))
		return 0;
	count(ingress ? TF_COUNTER_DROPPED_INGRESS : TF_COUNTER_DROPPED_EGRESS);
	return 1;
}

/*
 * The same verdict for an skb at either clsact hook. Headers may sit beyond the
 * linear part (GSO/GRO, paged buffers), so the first bytes are made linear first.
 * At ingress the kernel has pushed the Ethernet header back, so data starts at
 * it as in XDP. On an L3 device (l3 set) there is no link-layer header: data
 * starts at the IP header and skb->protocol says which IP it is.
 */
static __always_inline int skb_is_frozen(struct __sk_buff *skb, int ingress, int l3)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	if (data_end - data < TF_SKB_PULL_BYTES && skb->len > data_end - data) {
		__u32 want = skb->len < TF_SKB_PULL_BYTES ? skb->len : TF_SKB_PULL_BYTES;

		bpf_skb_pull_data(skb, want);
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
	}
	return frame_is_frozen(data, data_end, ingress, l3 ? (__be16)skb->protocol : 0);
}

SEC("xdp")
int tf_xdp_ingress(struct xdp_md *ctx)
{
	if (frame_is_frozen((void *)(long)ctx->data, (void *)(long)ctx->data_end, 1, 0))
		return XDP_DROP;
	count(TF_COUNTER_PASSED);
	return XDP_PASS;
}

/*
 * Ingress as a TC filter, for interfaces where another tool owns the XDP hook:
 * it sees what that program passes, and decides exactly like tf_xdp_ingress
 * (no mark check: XDP has no mark, and CRIU marks only what its sockets send).
 */
SEC("tc")
int tf_tc_ingress(struct __sk_buff *skb)
{
	if (skb_is_frozen(skb, 1, 0))
		return TC_ACT_SHOT;
	count(TF_COUNTER_PASSED);
	return TC_ACT_OK;
}

SEC("tc")
int tf_tc_egress(struct __sk_buff *skb)
{
	/*
	 * CRIU's repair-mode sockets must keep talking while everything else is
	 * frozen. STOLEN, not SHOT: the stack must see the segment as sent (see the
	 * top of this file).
	 */
	if (skb->mark != TF_CRIU_REPAIR_MARK && skb_is_frozen(skb, 0, 0))
		return TC_ACT_STOLEN;
	count(TF_COUNTER_PASSED);
	return TC_ACT_OK;
}

/*
 * Ingress and egress for point-to-point (L3) devices: tun (ARPHRD_NONE),
 * WireGuard, PPP, ipip/sit/gre tunnels. Their frames have no link-layer header,
 * so these parse from the IP header, and decide exactly like the programs above
 * (egress with the same CRIU mark exemption and TC_ACT_STOLEN). Both run as TC
 * clsact filters whatever ingress hook the Ethernet interfaces use: XDP is not
 * used on L3 devices because XDP gives no skb->protocol to tell IPv4 from IPv6
 * in a frame without a link-layer header, and most of these drivers have no
 * native XDP, so it would run in generic mode, after the skb is built, where a
 * TC filter costs the same.
 */
SEC("tc")
int tf_l3_ingress(struct __sk_buff *skb)
{
	if (skb_is_frozen(skb, 1, 1))
		return TC_ACT_SHOT;
	count(TF_COUNTER_PASSED);
	return TC_ACT_OK;
}

SEC("tc")
int tf_l3_egress(struct __sk_buff *skb)
{
	if (skb->mark != TF_CRIU_REPAIR_MARK && skb_is_frozen(skb, 0, 1))
		return TC_ACT_STOLEN;
	count(TF_COUNTER_PASSED);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
