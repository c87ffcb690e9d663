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
 * A connection entry's drop of a data segment also keeps the segment itself, for the
 * replay that a thaw does (see struct tf_replay): the peer's in tf_replay, this host's
 * own in tf_replay_local.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <bpf/bpf_core_read.h>
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

/*
 * The peer's last dropped data segment per frozen connection (struct tf_replay). User
 * space creates it with tf_connections' capacity: one record per connection at most.
 * Not preallocated: only connections whose peer sent data while frozen cost memory.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct tf_conn_key);
	__type(value, struct tf_replay);
} tf_replay SEC(".maps");

/*
 * The mirror of tf_replay: the last data segment this host's own socket sent that a
 * connection entry dropped on egress, same layout and capacity. A reply the server had
 * sent when the freeze began is in its socket's send queue as sent; a socket CRIU
 * restored resends it only when its fresh retransmission timer fires (about 1 s), and no
 * ICMP can shorten a timer that has not backed off. The thaw sends this segment to the
 * peer as the socket's own retransmission would be, so the peer has it at once and its
 * ACK frees it (see SegmentReplay.cs).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct tf_conn_key);
	__type(value, struct tf_replay);
} tf_replay_local SEC(".maps");

/*
 * Where a record is built before it goes into tf_replay in one update: a hash map
 * update swaps the whole element, so user space never reads a record half written by
 * one segment and half by another (the record is too big for the stack).
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tf_replay);
} tf_replay_scratch SEC(".maps");

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
	__u8 replayable;	/* carries data or FIN, and no SYN or RST (see struct tf_replay) */
	__u8 pad;
	__u16 ip_offset;	/* of the IP header from the frame's start */
	__u16 tcp_offset;	/* of the TCP header from the IP header */
	__u32 ip_length;	/* of the whole IP packet, from its length field */
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
	void *ip_start = cursor;

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
		seg->ip_length = bpf_ntohs(ip->tot_len);
		ip_end = (__u32)((void *)ip - data) + seg->ip_length;
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
		seg->ip_length = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
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
	seg->ip_offset = (__u16)(ip_start - data);
	seg->tcp_offset = (__u16)((void *)tcp - ip_start);
	seg->sport = tcp->source;
	seg->dport = tcp->dest;
	seg->seq = tcp->seq;
	/*
	 * Payload length from the IP length fields (a GSO skb's are those of the
	 * whole super-packet; an IPv6 jumbogram's is 0 and counts as no data).
	 */
	__u32 tcp_end = (__u32)((void *)tcp - data) + tcp->doff * 4;

	seg->consumes_seq = tcp->syn || tcp->fin || ip_end > tcp_end;
	seg->replayable = !tcp->syn && !tcp->rst && (tcp->fin || ip_end > tcp_end);
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

/*
 * The one field of the kernel's struct tcp_sock the just-in-time rule reads. CO-RE:
 * libbpf finds the bit in the running kernel's BTF when it loads the object, so the
 * offset below is never used as such.
 */
struct tcp_sock___tf {
	__u8 repair:1;
} __attribute__((preserve_access_index));

#define TF_TCP_LISTEN 10

/*
 * Whether a found socket is away from its peer for the just-in-time rule (see
 * TF_ENTRY_JUST_IN_TIME): in TCP repair mode, or, for a connection entry, a listener
 * standing where the connection's own socket is gone.
 */
static __always_inline int found_socket_is_away(struct bpf_sock *sk, int endpoint_entry)
{
	if (sk->state == TF_TCP_LISTEN)
		return !endpoint_entry;
	struct tcp_sock___tf *tp = (struct tcp_sock___tf *)bpf_skc_to_tcp_sock(sk);

	if (!tp)
		return 0;
	return BPF_CORE_READ_BITFIELD(tp, repair) != 0;
}

/*
 * Looks up this host's socket for the segment's connection (in the namespace of the
 * interface) and says whether it is away (see TF_ENTRY_JUST_IN_TIME). No socket at all
 * (TIME_WAIT and request sockets are not returned either) counts as away.
 */
static __always_inline int looked_up_socket_is_away(void *ctx, struct tf_segment *seg, int ingress, int endpoint_entry)
{
	struct bpf_sock_tuple tuple = {};
	struct bpf_sock *sk;
	/* The tuple as the segment would arrive: source is the peer. */
	__u8 *remote = ingress ? seg->saddr : seg->daddr;
	__u8 *local = ingress ? seg->daddr : seg->saddr;
	__be16 remote_port = ingress ? seg->sport : seg->dport;
	__be16 local_port = ingress ? seg->dport : seg->sport;

	if (seg->family == TF_FAMILY_IPV4) {
		__builtin_memcpy(&tuple.ipv4.saddr, remote, 4);
		__builtin_memcpy(&tuple.ipv4.daddr, local, 4);
		tuple.ipv4.sport = remote_port;
		tuple.ipv4.dport = local_port;
		sk = bpf_sk_lookup_tcp(ctx, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
	} else {
		__builtin_memcpy(tuple.ipv6.saddr, remote, 16);
		__builtin_memcpy(tuple.ipv6.daddr, local, 16);
		tuple.ipv6.sport = remote_port;
		tuple.ipv6.dport = local_port;
		sk = bpf_sk_lookup_tcp(ctx, &tuple, sizeof(tuple.ipv6), BPF_F_CURRENT_NETNS, 0);
	}
	if (!sk)
		return 1;
	int away = found_socket_is_away(sk, endpoint_entry);

	bpf_sk_release(sk);
	return away;
}

/*
 * Whether a just-in-time entry drops this segment: its local socket is away. On egress
 * the sending socket is at hand (skb->sk) when the segment comes from the connection's
 * own socket; a reset the kernel sends for a socket that is gone comes from a per-namespace
 * control socket (no peer) and is looked up like ingress. A socket that closes while
 * not in repair mode (a connection still waiting in a dumped listener's accept queue, which
 * CRIU does not dump) sends its reset from itself, after leaving the hash tables: it passes,
 * and the peer learns at once that the connection is gone, as with CRIU's iptables lock.
 */
static __always_inline int just_in_time_drops(void *ctx, struct bpf_sock *sender, struct tf_segment *seg, int ingress, int endpoint_entry)
{
	if (!ingress && sender) {
		struct bpf_sock *full = bpf_sk_fullsock(sender);

		/*
		 * The peer's port identifies the connection's own socket: a control socket has
		 * none, and a closing socket keeps it while its local port is already released
		 * (0) by the time it sends its reset.
		 */
		if (full && full->protocol == IPPROTO_TCP && full->dst_port == seg->dport)
			return found_socket_is_away(full, endpoint_entry);
	}
	return looked_up_socket_is_away(ctx, seg, ingress, endpoint_entry);
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
 * Keeps the segment that a connection entry just dropped for the replay (see struct
 * tf_replay): the peer's (ingress) in tf_replay, this host's (egress, TF_RECORD_LOCAL in
 * how) in tf_replay_local. The IP packet's first TF_REPLAY_BYTES bytes at most, read with
 * the helper of the hook (TF_RECORD_XDP: an XDP frame, else an skb), whose data may lie
 * beyond what the program can read directly. frame_length is the frame's length from its
 * start. A record that cannot be made (map full, no memory) only costs the replay of this
 * connection: the kick and the sender's own timer still resume it.
 * A function of its own, not inlined: inlined into every path of the decision (both
 * hooks, the just-in-time lookups) it multiplied the verifier's work, and loading the
 * programs took 0.8 s instead of 0.09 s (bpftool prog loadall, this machine). It takes
 * the clock itself because a BPF function takes five arguments at most.
 */
#define TF_RECORD_XDP 1	/* ctx is an XDP frame, else an skb */
#define TF_RECORD_LOCAL 2	/* an egress drop of this host's segment: tf_replay_local */

static __noinline void record_replay(void *ctx, int how, __u32 frame_length, struct tf_segment *seg, struct tf_conn_key *conn)
{
	int xdp = how & TF_RECORD_XDP;

	__u32 zero = 0;
	struct tf_replay *record = bpf_map_lookup_elem(&tf_replay_scratch, &zero);

	if (!record || frame_length <= seg->ip_offset)
		return;
	__u32 length = seg->ip_length;
	__u32 available = frame_length - seg->ip_offset;

	if (length > available)
		length = available;
	if (length > TF_REPLAY_BYTES)
		length = TF_REPLAY_BYTES;
	/* No shorter than an IPv4 and a TCP header. */
	if (length < 40)
		return;
	/*
	 * The same value (length is 1..TF_REPLAY_BYTES here), in a form whose bounds the
	 * verifier sees on the register handed to the helper: a compare on a copy does not
	 * carry over.
	 */
	__u32 bounded = ((length - 1) & (TF_REPLAY_BYTES - 1)) + 1;
	long read = xdp ? bpf_xdp_load_bytes(ctx, seg->ip_offset, record->bytes, bounded)
			: bpf_skb_load_bytes(ctx, seg->ip_offset, record->bytes, bounded);

	if (read)
		return;
	record->recorded_ns = bpf_ktime_get_ns();
	record->family = seg->family;
	record->pad = 0;
	record->tcp_offset = seg->tcp_offset;
	record->captured = (__u16)length;
	record->reserved = 0;
	record->ip_length = seg->ip_length;
	record->reserved2 = 0;
	if (how & TF_RECORD_LOCAL)
		bpf_map_update_elem(&tf_replay_local, conn, record, BPF_ANY);
	else
		bpf_map_update_elem(&tf_replay, conn, record, BPF_ANY);
}

/*
 * Whether an active entry drops the segment: always, unless it is a just-in-time entry
 * whose socket is still with its peer.
 */
static __always_inline int entry_drops(void *ctx, struct bpf_sock *sender, struct tf_entry *entry, struct tf_segment *seg, int ingress, int endpoint_entry)
{
	if (!(entry->flags & TF_ENTRY_JUST_IN_TIME))
		return 1;
	return just_in_time_drops(ctx, sender, seg, ingress, endpoint_entry);
}

/*
 * Looks the segment up from the host's point of view: for ingress the local
 * side is the destination, for egress the source. Returns 1 to drop. ctx is the
 * program's context (for the socket lookup), sender the egress skb's socket (NULL on
 * ingress).
 */
static __always_inline int should_drop(void *ctx, int xdp, __u32 frame_length, struct bpf_sock *sender, struct tf_segment *seg, int ingress)
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
	if (entry && entry_active(entry, now) && entry_drops(ctx, sender, entry, seg, ingress, 0)) {
		record_drop(entry, seg, ingress, now);
		if (seg->replayable)
			record_replay(ctx, ingress ? (xdp ? TF_RECORD_XDP : 0) : TF_RECORD_LOCAL, frame_length, seg, &conn);
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
	/* An entry for the exact address whose lease has ended must not hide one for the any-address. */
	if (!entry || !entry_active(entry, now)) {
		__builtin_memset(endpoint.addr, 0, 16);
		entry = bpf_map_lookup_elem(&tf_endpoints, &endpoint);
	}
	if (entry && entry_active(entry, now) && entry_drops(ctx, sender, entry, seg, ingress, 1)) {
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
static __always_inline int frame_is_frozen(void *ctx, int xdp, __u32 frame_length, struct bpf_sock *sender, void *data, void *data_end, int ingress, __be16 l3_proto)
{
	struct tf_segment seg = {};
	int parsed = l3_proto ? parse_ip_tcp(data, data, data_end, l3_proto, &seg) : parse_tcp(data, data_end, &seg);

	if (parsed != 0)
		return 0;
	count(TF_COUNTER_SEEN);
	if (!should_drop(ctx, xdp, frame_length, sender, &seg, ingress))
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
	return frame_is_frozen(skb, 0, skb->len, ingress ? 0 : skb->sk, data, data_end, ingress, l3 ? (__be16)skb->protocol : 0);
}

SEC("xdp")
int tf_xdp_ingress(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	/* The linear part: a multi-buffer frame's fragments hold payload, not headers. */
	if (frame_is_frozen(ctx, 1, (__u32)(data_end - data), 0, (void *)(long)ctx->data, (void *)(long)ctx->data_end, 1, 0))
		return XDP_DROP;
	count(TF_COUNTER_PASSED);
	return XDP_PASS;
}

/*
 * Ingress as a TC filter, for interfaces where another tool owns the XDP hook, and
 * always on loopback: it sees what an XDP program passes, and decides like
 * tf_xdp_ingress, except that it lets CRIU's own packets through. To restore a socket
 * that had received a FIN, CRIU injects a fake FIN from a raw socket carrying its
 * repair mark, which reaches the restored socket (in repair mode, so frozen) through
 * loopback with the mark kept; XDP cannot see a mark, which is why loopback always gets
 * this program. Packets from another host never carry a mark (it is cleared when a
 * packet crosses into another namespace).
 */
SEC("tc")
int tf_tc_ingress(struct __sk_buff *skb)
{
	if (skb->mark != TF_CRIU_REPAIR_MARK && skb_is_frozen(skb, 1, 0))
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
