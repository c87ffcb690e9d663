// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * TcpFreeze's socket iterator: lists the TCP sockets one process holds, straight from its
 * descriptor table, in one read(2).
 *
 * Discovering a server's connections the portable way costs two passes: readlink(2) on
 * every /proc/PID/fd entry (about 2.7 us each: the kernel formats "socket:[INODE]") and a
 * sock_diag dump, which walks every bucket of the connection hash table once per address
 * family. With thousands of connections that is 10-13 ms per discovery, twice per
 * checkpoint. A task_file iterator (Linux 5.8; a per-process one from 6.1) visits the
 * process's open files in the kernel and writes one fixed record per TCP socket, with
 * the endpoints and the state already read: about a microsecond per descriptor.
 *
 * It is a separate object from the packet programs, because it needs the kernel's BTF
 * (a tracing program): where that is missing, only discovery falls back to /proc and
 * sock_diag; freezing never depends on it.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "tcpfreeze.h"

/*
 * The kernel's types, only the fields read here. CO-RE: libbpf finds each field in the
 * running kernel's BTF when it loads the program, so these layouts are never used as such.
 */
struct seq_file;

struct bpf_iter_meta {
	struct seq_file *seq;
} __attribute__((preserve_access_index));

struct inode {
	unsigned long i_ino;
} __attribute__((preserve_access_index));

struct file {
	struct inode *f_inode;
} __attribute__((preserve_access_index));

struct bpf_iter__task_file {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
	__u32 fd;
	struct file *file;
} __attribute__((preserve_access_index));

struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct net {
	struct ns_common ns;
} __attribute__((preserve_access_index));

struct in6_addr___tf {
	__u8 s6_addr[16];
};

struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	volatile unsigned char skc_state;
	struct {
		struct net *net;
	} skc_net;
	struct in6_addr___tf skc_v6_daddr;
	struct in6_addr___tf skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	__u16 sk_protocol;
} __attribute__((preserve_access_index));

struct socket {
	struct sock *sk;
} __attribute__((preserve_access_index));

#define TF_AF_INET 2
#define TF_AF_INET6 10

char LICENSE[] SEC("license") = "Dual MIT/GPL";

SEC("iter/task_file")
int tf_task_sockets(struct bpf_iter__task_file *ctx)
{
	struct file *file = ctx->file;

	if (!file)
		return 0; /* the end of the walk */
	struct socket *sock = bpf_sock_from_file(file);

	if (!sock)
		return 0; /* not a socket */
	struct sock *sk = sock->sk;

	if (!sk || sk->sk_protocol != IPPROTO_TCP)
		return 0;
	struct tf_socket_record rec = {};

	rec.family = sk->__sk_common.skc_family;
	if (rec.family == TF_AF_INET) {
		__builtin_memcpy(rec.local, &sk->__sk_common.skc_rcv_saddr, 4);
		__builtin_memcpy(rec.remote, &sk->__sk_common.skc_daddr, 4);
	} else if (rec.family == TF_AF_INET6) {
		__builtin_memcpy(rec.local, sk->__sk_common.skc_v6_rcv_saddr.s6_addr, 16);
		__builtin_memcpy(rec.remote, sk->__sk_common.skc_v6_daddr.s6_addr, 16);
	} else {
		return 0;
	}
	rec.inode = file->f_inode->i_ino;
	rec.netns = sk->__sk_common.skc_net.net->ns.inum;
	rec.fd = ctx->fd;
	rec.local_port = sk->__sk_common.skc_num;
	rec.remote_port = sk->__sk_common.skc_dport; /* network order, as on the wire */
	rec.state = sk->__sk_common.skc_state;
	bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
	return 0;
}
