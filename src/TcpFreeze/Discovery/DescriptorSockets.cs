using System.Net;
using System.Net.Sockets;
using Interop;

namespace TcpFreeze;

/// <summary>
/// Reads a few TCP sockets straight from the descriptors that hold them: a copy of each descriptor
/// (pidfd_getfd), then its addresses (getsockname, getpeername) and state (TCP_INFO). A sock_diag dump and
/// /proc/net/tcp both walk the kernel's whole connection hash table, whatever the number of sockets: about
/// 0.75 ms per address family with the 262,144 buckets of a 2-core machine of this kind, which is most of a
/// small tree's discovery. Null when any descriptor cannot be read this way (no pidfd_getfd, no ptrace
/// permission over the process, a descriptor closed or reused since the scan): the caller then dumps the table.
/// </summary>
internal static unsafe class DescriptorSockets
{
    /// <summary>Up to this many sockets, reading each descriptor costs less than one table walk.</summary>
    public const int MaximumSockets = 64;

    /// <summary>The TCP sockets among <paramref name="holders"/> (inode to the process and descriptor holding it), IPv4 first; null as the class says.</summary>
    public static List<ProcNetTcpEntry>? TryRead(Dictionary<ulong, (int Pid, int Fd)> holders)
    {
        var pidfds = new Dictionary<int, FileDescriptorHandle>();
        try
        {
            var entries = new List<ProcNetTcpEntry>(holders.Count);
            foreach ((ulong inode, (int pid, int fd)) in holders)
            {
                if (!pidfds.TryGetValue(pid, out FileDescriptorHandle? pidfd))
                    pidfds[pid] = pidfd = Libc.PidfdOpen(pid);
                if (pidfd.IsInvalid)
                    return null;
                using FileDescriptorHandle socket = Libc.PidfdGetfd(pidfd, fd);
                if (socket.IsInvalid || !Libc.TryGetFileId(socket, out _, out _, out ulong actual) || actual != inode)
                    return null;
                if (!Libc.TryGetSocketOption(socket, Libc.SOL_SOCKET, Libc.SO_DOMAIN, out int domain))
                    return null;
                if (domain is not (Libc.AF_INET or Libc.AF_INET6))
                    continue; // a Unix or netlink socket
                if (!Libc.TryGetSocketOption(socket, Libc.SOL_SOCKET, Libc.SO_PROTOCOL, out int protocol))
                    return null;
                if (protocol != Libc.IPPROTO_TCP)
                    continue;
                if (TryReadState(socket) is not { } state || Libc.GetSocketEndPoint(socket, peer: false) is not { } local)
                    return null;
                IPEndPoint? remote = state is TcpSocketState.Listen or TcpSocketState.Close
                    ? new IPEndPoint(local.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0)
                    : Libc.GetSocketEndPoint(socket, peer: true);
                if (remote is null)
                    return null; // a state without a peer address this reader does not know: the dump knows it
                entries.Add(new ProcNetTcpEntry(local, remote, state, inode));
            }
            // The order of a dump: IPv4, then IPv6.
            return [.. entries.Where(e => e.Local.AddressFamily == AddressFamily.InterNetwork),
                    .. entries.Where(e => e.Local.AddressFamily != AddressFamily.InterNetwork)];
        }
        finally
        {
            foreach (FileDescriptorHandle pidfd in pidfds.Values)
                pidfd.Dispose();
        }
    }

    /// <summary>tcpi_state, the first byte of struct tcp_info.</summary>
    private static TcpSocketState? TryReadState(FileDescriptorHandle socket)
    {
        byte* info = stackalloc byte[8];
        uint length = 8;
        return Libc.getsockopt(socket, Libc.IPPROTO_TCP, Libc.TCP_INFO, info, &length) == 0 && length >= 1 ? (TcpSocketState)info[0] : null;
    }
}
