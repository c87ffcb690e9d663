/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Shared layouts of the TcpFreeze maps. The C# side mirrors these structs
 * (ConnectionKey, EndpointKey, FreezeEntry); a test compares both against the
 * BTF that clang emits for this file, so a change here that is not made there
 * fails the build's tests instead of silently mis-keying the map.
 */
#ifndef TCPFREEZE_H
#define TCPFREEZE_H

#include <linux/types.h>

#define TF_FAMILY_IPV4 4
#define TF_FAMILY_IPV6 6

/* CRIU marks the packets of its repair-mode sockets with this value. */
#define TF_CRIU_REPAIR_MARK 0xC114

/*
 * One TCP connection, seen from this host: "local" is the address and port of
 * the socket on this host, "remote" the peer. Ingress builds the key from
 * (daddr, dport, saddr, sport), egress from (saddr, sport, daddr, dport), so
 * one entry freezes both directions. Ports are in network byte order, exactly
 * as they appear in the TCP header. IPv4 addresses take the first 4 bytes of
 * the 16-byte fields; the rest is zero.
 */
struct tf_conn_key {
	__u8 family;		/* TF_FAMILY_IPV4 or TF_FAMILY_IPV6 */
	__u8 pad[3];
	__be16 local_port;
	__be16 remote_port;
	__u8 local_addr[16];
	__u8 remote_addr[16];
};

/* A local endpoint (address and port); an all-zero address means any address. */
struct tf_endpoint_key {
	__u8 family;
	__u8 pad;
	__be16 port;
	__u8 addr[16];
};

/*
 * Value of both maps. deadline_ns is CLOCK_MONOTONIC (bpf_ktime_get_ns); 0
 * means no lease. Once the deadline has passed the entry stops dropping and
 * user space may delete it.
 *
 * The rest is what a thaw needs to wake the connection up at once (the resume
 * kick, see src/TcpFreeze/Resume/ResumeKick.cs): TCP backs off while frozen,
 * and its next retransmission can come as late as the freeze was long. For each
 * direction the programs keep the sequence number of the last dropped segment
 * that carried data (or SYN/FIN): during back-off that is the retransmission of
 * the sender's oldest unacknowledged byte. The *_data_drops counters say how
 * many such segments were dropped (0: the sequence number is not set).
 */
struct tf_entry {
	__u64 deadline_ns;
	__u64 dropped;		/* packets dropped for this entry, both directions */
	__u64 first_drop_ns;	/* CLOCK_MONOTONIC of the first drop; 0: none yet */
	__be32 remote_seq;	/* last data segment dropped on ingress (the peer's) */
	__be32 local_seq;	/* last data segment dropped on egress (this host's) */
	__u32 remote_data_drops;
	__u32 local_data_drops;
	__u32 flags;		/* TF_ENTRY_* */
	__u32 reserved;		/* zero */
};

/*
 * tf_entry.flags. Without TF_ENTRY_JUST_IN_TIME an entry drops every segment of its
 * key while its lease runs (a plain freeze: both ends silent at once). With it, the
 * entry drops a segment only once the connection's socket on this host has left the
 * peer's reach: the socket is in TCP repair mode (CRIU is dumping or restoring it),
 * or it does not exist (dumped and killed, not restored yet). Until then the socket
 * is served as if nothing were frozen, and it is served again the moment CRIU takes
 * it out of repair mode. That is CRIU's own per-connection lock, taken just in time
 * by the kernel instead of by a command per connection: a client is stalled only
 * while its own socket is away, never another process's socket on the same port.
 * For an endpoint entry, a listening socket found for a segment counts as present
 * (a SYN to a live listener is that listener's to answer); for a connection entry it
 * does not (the connection's own socket is gone, and the listener would reset it).
 */
#define TF_ENTRY_JUST_IN_TIME 1

/*
 * The replay (see src/TcpFreeze/Resume/SegmentReplay.cs): the last data segment the
 * peer sent that a connection entry dropped on ingress, kept in the tf_replay map under
 * the connection's key (one per connection, the map sized like tf_connections). While
 * frozen, the peer's retransmissions all start at its oldest unacknowledged byte, so
 * this is the segment the local socket needs next; the thaw hands it to the thawed
 * socket through this host's own stack, the socket acknowledges new data, and the
 * peer's TCP resumes on that ACK at once (RFC 6298, 5.3), whatever its OS and whether
 * or not ICMP reaches it. Up to TF_REPLAY_BYTES of the IP packet are kept: a whole
 * retransmission of a 1500-byte MTU (after a timeout TCP retransmits one MSS at a
 * time). It must be whole: an ACK of part of a segment does not end a Linux sender's
 * back-off (the skb is not fully acknowledged, so no RTT sample resets its timer, and
 * its one-segment window is still full); a longer one is replayed cut to what was kept,
 * which delivers those bytes and speeds up nothing.
 * The same layout serves the mirror, tf_replay_local: the last data segment this host's
 * own socket sent that a connection entry dropped on egress, which the thaw sends to the
 * peer (a reply dropped at the freeze, which a socket CRIU restored would resend only on
 * its fresh 1 s timer).
 */
#define TF_REPLAY_BYTES 2048

struct tf_replay {
	__u64 recorded_ns;	/* CLOCK_MONOTONIC of the drop */
	__u8 family;		/* TF_FAMILY_IPV4 or TF_FAMILY_IPV6 */
	__u8 pad;
	__u16 tcp_offset;	/* offset of the TCP header in bytes[] */
	__u16 captured;		/* bytes of the IP packet kept in bytes[] */
	__u16 reserved;		/* zero */
	__u32 ip_length;	/* the whole IP packet's length, from its length field */
	__u32 reserved2;	/* zero */
	__u8 bytes[TF_REPLAY_BYTES];	/* the IP packet from its first byte */
};

/*
 * Index 0 of the one-element tf_config array: non-zero while the endpoints map may
 * hold entries. User space sets it before it inserts endpoints and clears it only
 * after the endpoints map is empty, so a crash can leave it set (a little slower)
 * but never clear while endpoints are frozen. It saves packets of unfrozen
 * connections two hash lookups in the common case of no frozen endpoint.
 */
struct tf_config {
	__u64 endpoints_present;
};

/* Indexes of the per-CPU counters array. */
enum tf_counter {
	TF_COUNTER_SEEN = 0,		/* TCP packets the programs parsed */
	TF_COUNTER_DROPPED_INGRESS = 1,	/* by either ingress hook (XDP or TC) */
	TF_COUNTER_DROPPED_EGRESS = 2,
	TF_COUNTER_PASSED = 3,		/* every packet let through, TCP or not */
	TF_COUNTER_MAX = 4,
};

/*
 * One TCP socket a process holds, as the socket iterator (tcpfreeze_sockets.bpf.c) writes
 * it: 56 bytes, no padding. Addresses in network order, IPv4 in the first 4 bytes; the
 * local port in host order and the remote port in network order, as the kernel keeps them.
 */
struct tf_socket_record {
	__u64 inode;		/* the socket's inode, as in "socket:[INODE]" */
	__u32 netns;		/* the inode of the socket's network namespace */
	__u32 fd;		/* the descriptor that holds it */
	__u8 local[16];
	__u8 remote[16];
	__u16 family;		/* AF_INET or AF_INET6 */
	__u16 local_port;	/* host order */
	__u16 remote_port;	/* network order */
	__u8 state;		/* TCP_ESTABLISHED (1) ... TCP_LISTEN (10) */
	__u8 pad;
};

#endif
