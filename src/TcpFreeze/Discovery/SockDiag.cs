using System.Buffers;
using System.Net;
using System.Runtime.InteropServices;
using TcpFreeze.Ebpf.Interop;
using Interop;
using TcpFreeze.Native;

namespace TcpFreeze;

/// <summary>
/// Lists the TCP sockets of the calling thread's network namespace through the kernel's
/// sock_diag netlink interface (NETLINK_SOCK_DIAG, what ss(8) uses). It reports the
/// sockets /proc/net/tcp and tcp6 print, as binary records: the kernel formats no text
/// and nothing here splits lines, which for thousands of sockets is most of the cost of
/// reading the text tables.
/// </summary>
internal static unsafe class SockDiag
{
    /// <summary>
    /// The states to dump: all but TIME_WAIT and CLOSE (never a connection discovery
    /// reports), NEW_SYN_RECV (request sockets, held by no descriptor) and BOUND_INACTIVE
    /// (bound-only sockets, which /proc/net/tcp does not list). Filtering in the kernel
    /// keeps those out of the replies altogether.
    /// </summary>
    internal const uint DumpedStates =
        1u << (int)TcpSocketState.Established | 1u << (int)TcpSocketState.SynSent | 1u << (int)TcpSocketState.SynReceived
        | 1u << (int)TcpSocketState.FinWait1 | 1u << (int)TcpSocketState.FinWait2 | 1u << (int)TcpSocketState.CloseWait
        | 1u << (int)TcpSocketState.LastAck | 1u << (int)TcpSocketState.Listen | 1u << (int)TcpSocketState.Closing;

    /// <summary>
    /// The kernel fills one reply datagram of a dump per receive, at most 32 KiB
    /// (netlink_recvmsg caps its dump allocations there); twice that leaves room to spare,
    /// and MSG_TRUNC still reports a larger one instead of cutting it silently.
    /// </summary>
    private const int BufferSize = 64 * 1024;

    /// <summary>A dump normally answers at once; this long without a reply means something is wrong.</summary>
    private const int ReceiveTimeoutSeconds = 5;

    /// <summary>Bounds the receive loop: 2^20 datagrams of 32 KiB hold far more sockets than a namespace can.</summary>
    private const int MaxDatagrams = 1 << 20;

    private static readonly int HeaderSize = sizeof(Libc.NlMsgHdr);

    /// <summary>
    /// The IPv4, then IPv6, TCP sockets of the calling thread's network namespace whose
    /// inode is in <paramref name="wanted"/> (all when null); null when this kernel or
    /// sandbox offers no sock_diag for TCP, where /proc/net/tcp is the way to go.
    /// </summary>
    /// <exception cref="NativeCallException">A dump failed; the errno says why.</exception>
    /// <exception cref="FormatException">The kernel replied with something this version cannot read.</exception>
    internal static List<ProcNetTcpEntry>? TryDumpTcp(HashSet<ulong>? wanted) => TryDumpTcp(wanted, DumpedStates);

    /// <summary>
    /// As <see cref="TryDumpTcp(HashSet{ulong}?)"/>, in the states of <paramref name="states"/> only (bit 1 &lt;&lt; state).
    /// Listen alone is cheap: the kernel then walks only its table of listeners, not every connection's hash bucket.
    /// </summary>
    internal static List<ProcNetTcpEntry>? TryDumpTcp(HashSet<ulong>? wanted, uint states)
    {
        using FileDescriptorHandle? socket = TryOpen();
        if (socket is null)
            return null; // no NETLINK_SOCK_DIAG (EPROTONOSUPPORT), or netlink is forbidden here: the text tables need neither

        byte[] buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            var sockets = new List<ProcNetTcpEntry>();
            int errno = Dump(socket, Libc.AF_INET, buffer, wanted, sockets, states);
            if (errno != 0)
                return IsUnsupported(errno) ? null : throw DumpFailed(Libc.AF_INET, errno);
            errno = Dump(socket, Libc.AF_INET6, buffer, wanted, sockets, states);
            // A kernel without IPv6 has no IPv6 sockets (and no /proc/net/tcp6 either).
            if (errno != 0 && !IsUnsupported(errno))
                throw DumpFailed(Libc.AF_INET6, errno);
            return sockets;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>A sock_diag socket with a receive timeout; null when this kernel or sandbox offers none.</summary>
    /// <exception cref="NativeCallException">The timeout cannot be set.</exception>
    private static FileDescriptorHandle? TryOpen()
    {
        FileDescriptorHandle socket = Libc.socket(Libc.AF_NETLINK, Libc.SOCK_RAW | Libc.SOCK_CLOEXEC, Libc.NETLINK_SOCK_DIAG);
        if (socket.IsInvalid)
        {
            socket.Dispose();
            return null;
        }
        var timeout = new Libc.TimeVal { Seconds = ReceiveTimeoutSeconds };
        if (Libc.setsockopt(socket, Libc.SOL_SOCKET, Libc.SO_RCVTIMEO, &timeout, (uint)sizeof(Libc.TimeVal)) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            socket.Dispose();
            throw new NativeCallException("set a receive timeout on the sock_diag socket (SO_RCVTIMEO)", errno);
        }
        return socket;
    }

    /// <summary>
    /// Sends one dump request and reads the replies until NLMSG_DONE. Returns 0, or the
    /// errno the kernel answered with (NLMSG_ERROR, or NLMSG_DONE carrying an error).
    /// </summary>
    private static int Dump(FileDescriptorHandle socket, byte family, byte[] buffer, HashSet<ulong>? wanted, List<ProcNetTcpEntry> sockets, uint states)
    {
        uint sequence = family; // one request at a time per socket: the family tells them apart
        var request = new Libc.InetDiagRequest
        {
            Header = new Libc.NlMsgHdr
            {
                Length = (uint)sizeof(Libc.InetDiagRequest),
                Type = Libc.SOCK_DIAG_BY_FAMILY,
                Flags = Libc.NLM_F_REQUEST | Libc.NLM_F_DUMP,
                Sequence = sequence,
            },
            Request = new Libc.InetDiagReqV2 { Family = family, Protocol = Libc.IPPROTO_TCP, States = states },
        };
        var kernel = new Libc.SockAddrNl { Family = Libc.AF_NETLINK };
        if (Libc.sendto(socket, &request, (nuint)sizeof(Libc.InetDiagRequest), 0, &kernel, (uint)sizeof(Libc.SockAddrNl)) < 0)
            throw new NativeCallException($"send the sock_diag request for {FamilyName(family)} TCP sockets", Marshal.GetLastPInvokeError());

        fixed (byte* data = buffer)
        {
            for (int received = 0; received < MaxDatagrams; received++)
            {
                nint length = Libc.recv(socket, data, (nuint)buffer.Length, Libc.MSG_TRUNC);
                if (length < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == Errnos.EINTR)
                        continue;
                    throw new NativeCallException($"receive the sock_diag dump of {FamilyName(family)} TCP sockets", errno,
                        errno == Errnos.EAGAIN ? $"the kernel sent nothing for {ReceiveTimeoutSeconds} s" : null);
                }
                if (length == 0 || length > buffer.Length)
                    throw new FormatException($"a sock_diag reply of {length} bytes does not fit a {buffer.Length}-byte buffer or is empty");
                if (ReadDatagram(buffer.AsSpan(0, (int)length), sequence, wanted, sockets, out int error))
                    return error;
            }
        }
        throw new NativeCallException($"receive the sock_diag dump of {FamilyName(family)} TCP sockets: no end after {MaxDatagrams} replies");
    }

    /// <summary>
    /// The socket of this thread's network namespace that is exactly each of <paramref name="keys"/> (its local and
    /// remote address and port), found by the kernel's own lookup (a request without NLM_F_DUMP): a few hash probes
    /// per key instead of a walk of every bucket. A key no socket is gets no entry; the kernel's lookup falls back to a
    /// listener or a TIME_WAIT socket, which are returned as they are (callers compare). Null when this kernel offers no
    /// sock_diag lookup for TCP.
    /// </summary>
    /// <exception cref="NativeCallException">A lookup failed otherwise; the errno says why.</exception>
    /// <exception cref="FormatException">The kernel replied with something this version cannot read.</exception>
    internal static List<ProcNetTcpEntry>? TryLookUpTcp(IReadOnlyList<ConnectionKey> keys)
    {
        using FileDescriptorHandle? socket = TryOpen();
        if (socket is null)
            return null;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            var found = new List<ProcNetTcpEntry>();
            var kernel = new Libc.SockAddrNl { Family = Libc.AF_NETLINK };
            for (int i = 0; i < keys.Count; i++)
            {
                ConnectionKey key = keys[i];
                bool v6 = key.Local.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;
                var request = new Libc.InetDiagRequest
                {
                    Header = new Libc.NlMsgHdr
                    {
                        Length = (uint)sizeof(Libc.InetDiagRequest),
                        Type = Libc.SOCK_DIAG_BY_FAMILY,
                        Flags = Libc.NLM_F_REQUEST,
                        Sequence = (uint)i + 1,
                    },
                    Request = new Libc.InetDiagReqV2 { Family = v6 ? Libc.AF_INET6 : Libc.AF_INET, Protocol = Libc.IPPROTO_TCP, States = uint.MaxValue },
                };
                request.Request.Id.SourcePort = ConnectionKey.ToNetwork(key.Local.Port);
                request.Request.Id.DestinationPort = ConnectionKey.ToNetwork(key.Remote.Port);
                key.Local.Address.TryWriteBytes(new Span<byte>(request.Request.Id.Source, 16), out _);
                key.Remote.Address.TryWriteBytes(new Span<byte>(request.Request.Id.Destination, 16), out _);
                request.Request.Id.Cookie[0] = request.Request.Id.Cookie[1] = uint.MaxValue; // INET_DIAG_NOCOOKIE: any socket
                if (Libc.sendto(socket, &request, (nuint)sizeof(Libc.InetDiagRequest), 0, &kernel, (uint)sizeof(Libc.SockAddrNl)) < 0)
                    throw new NativeCallException($"send a sock_diag lookup of {key}", Marshal.GetLastPInvokeError());
                fixed (byte* data = buffer)
                {
                    nint length;
                    do
                        length = Libc.recv(socket, data, (nuint)buffer.Length, Libc.MSG_TRUNC);
                    while (length < 0 && Marshal.GetLastPInvokeError() == Errnos.EINTR);
                    if (length < 0)
                        throw new NativeCallException($"receive the sock_diag lookup of {key}", Marshal.GetLastPInvokeError());
                    if (length == 0 || length > buffer.Length)
                        throw new FormatException($"a sock_diag reply of {length} bytes does not fit a {buffer.Length}-byte buffer or is empty");
                    int before = found.Count;
                    ReadDatagram(buffer.AsSpan(0, (int)length), (uint)i + 1, null, found, out int errno);
                    if (errno is Errnos.ENOENT)
                        continue; // no such socket (or, before any key, no inet_diag for this family: nothing found either way)
                    if (errno != 0)
                        return IsUnsupported(errno) ? null : throw new NativeCallException($"look up {key} through sock_diag", errno);
                    if (found.Count == before)
                        throw new FormatException($"the sock_diag lookup of {key} was answered with neither a socket nor an error");
                }
            }
            return found;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Reads one reply datagram of a dump: adds every socket record whose inode is in
    /// <paramref name="wanted"/> (all when null) to <paramref name="sockets"/>. True once the
    /// dump has ended, with <paramref name="errno"/> 0 or the kernel's error; messages of
    /// other sequence numbers and types this version does not know are skipped.
    /// </summary>
    /// <exception cref="FormatException">A message is cut short or claims more bytes than the datagram holds.</exception>
    internal static bool ReadDatagram(ReadOnlySpan<byte> datagram, uint sequence, HashSet<ulong>? wanted, List<ProcNetTcpEntry> sockets, out int errno)
    {
        errno = 0;
        int offset = 0;
        while (offset < datagram.Length)
        {
            int left = datagram.Length - offset;
            Libc.NlMsgHdr header = left >= HeaderSize
                ? MemoryMarshal.Read<Libc.NlMsgHdr>(datagram[offset..])
                : throw new FormatException($"a sock_diag reply ends with {left} bytes, too few for a netlink header");
            if (header.Length < HeaderSize || header.Length > left)
                throw new FormatException($"a netlink message at byte {offset} of a sock_diag reply claims {header.Length} bytes; {left} remain");
            ReadOnlySpan<byte> payload = datagram.Slice(offset + HeaderSize, (int)header.Length - HeaderSize);
            offset += Math.Min(Libc.NetlinkAlign((int)header.Length), left);
            if (header.Sequence != sequence)
                continue;
            switch (header.Type)
            {
                case Libc.SOCK_DIAG_BY_FAMILY:
                    if (TryReadSocket(payload, wanted, out ProcNetTcpEntry entry))
                        sockets.Add(entry);
                    break;
                case Libc.NLMSG_DONE:
                    // A dump that fails part-way ends with NLMSG_DONE carrying the negative errno.
                    errno = payload.Length >= sizeof(int) ? -Math.Min(MemoryMarshal.Read<int>(payload), 0) : 0;
                    return true;
                case Libc.NLMSG_ERROR:
                    int error = payload.Length >= sizeof(int)
                        ? MemoryMarshal.Read<int>(payload)
                        : throw new FormatException($"a netlink error message of a sock_diag reply has {payload.Length} bytes; struct nlmsgerr has {sizeof(Libc.NlMsgErr)}");
                    if (error == 0)
                        break; // an acknowledgement; a dump ends with NLMSG_DONE
                    errno = -error;
                    return true;
            }
        }
        return false;
    }

    /// <summary>One struct inet_diag_msg, as a table entry (addresses as the kernel stores them, IPv4-mapped IPv6 left as is).</summary>
    /// <exception cref="FormatException">The record is shorter than struct inet_diag_msg or its family is not AF_INET or AF_INET6.</exception>
    internal static ProcNetTcpEntry ReadSocket(ReadOnlySpan<byte> payload)
    {
        TryReadSocket(payload, null, out ProcNetTcpEntry entry);
        return entry;
    }

    /// <summary>Reads a socket record if its inode is wanted; only those cost endpoint objects.</summary>
    private static bool TryReadSocket(ReadOnlySpan<byte> payload, HashSet<ulong>? wanted, out ProcNetTcpEntry entry)
    {
        entry = default;
        if (payload.Length < sizeof(Libc.InetDiagMsg))
            throw new FormatException($"a sock_diag socket record has {payload.Length} bytes; struct inet_diag_msg has {sizeof(Libc.InetDiagMsg)}");
        Libc.InetDiagMsg message = MemoryMarshal.Read<Libc.InetDiagMsg>(payload); // attributes may follow; none is needed
        if (wanted is not null && !wanted.Contains(message.Inode))
            return false;
        int addressLength = message.Family switch
        {
            Libc.AF_INET => 4,
            Libc.AF_INET6 => 16,
            _ => throw new FormatException($"a sock_diag socket record has address family {message.Family}, not AF_INET (2) or AF_INET6 (10)"),
        };
        var local = new IPEndPoint(new IPAddress(new ReadOnlySpan<byte>(message.Id.Source, addressLength)), ConnectionKey.FromNetwork(message.Id.SourcePort));
        var remote = new IPEndPoint(new IPAddress(new ReadOnlySpan<byte>(message.Id.Destination, addressLength)), ConnectionKey.FromNetwork(message.Id.DestinationPort));
        entry = new ProcNetTcpEntry(local, remote, (TcpSocketState)message.State, message.Inode);
        return true;
    }

    /// <summary>
    /// Errors that mean "no sock_diag for this": no inet_diag handler for the family
    /// (ENOENT: tcp_diag not built, or no IPv6), or a protocol or family the kernel lacks.
    /// </summary>
    private static bool IsUnsupported(int errno) => errno is Errnos.ENOENT or Errnos.EOPNOTSUPP or Errnos.EPROTONOSUPPORT or Errnos.EAFNOSUPPORT;

    private static NativeCallException DumpFailed(byte family, int errno)
        => new($"dump the {FamilyName(family)} TCP sockets through sock_diag (NETLINK_SOCK_DIAG)", errno);

    private static string FamilyName(byte family) => family == Libc.AF_INET ? "IPv4" : "IPv6";
}
