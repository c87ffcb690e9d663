using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Interop;

namespace TcpFreeze.Resume;

/// <summary>
/// The resume kick: right after a thaw, wakes up the TCP senders of the released connections,
/// which are in retransmission back-off and would otherwise wait out their timer (up to about
/// as long as the freeze lasted). See RESUME.md for what was measured.
/// </summary>
/// <remarks>
/// For each released connection and each direction in which the programs dropped a data
/// segment, it sends a bounded burst of ICMP destination-unreachable messages quoting that
/// segment (<see cref="ResumeKickPackets"/>): to the peer for the segments the peer sent
/// (ingress drops), and to this host's own address for the segments the local socket sent
/// (egress drops), so that the local stack undoes its back-off the same way. Nothing goes
/// anywhere else: every destination is a frozen connection's own remote or local address.
/// </remarks>
internal static class ResumeKick
{
    /// <summary>The most messages one direction of one connection gets.</summary>
    public const int MaxPacketsPerDirection = 16;

    /// <summary>
    /// Messages for one direction that dropped <paramref name="dataDrops"/> data segments: each
    /// undoes one back-off step and every dropped retransmission added at most one, so a little
    /// more than the drops suffices; 0 when nothing was dropped (the sender is not backing off
    /// because of the freeze).
    /// </summary>
    public static int Budget(uint dataDrops) => dataDrops == 0 ? 0 : (int)Math.Min(MaxPacketsPerDirection, dataDrops + 2);

    /// <summary>
    /// The messages for the connections a thaw released, and the connections they cover. A peer
    /// whose dropped segment is replayed (<paramref name="replayed"/>) gets one message, not a burst:
    /// the replay's acknowledgement resumes it whatever its TCP, and at 10,000 connections the
    /// bursts were most of pre-resume's 0.37-0.49 s (the ICMP storm through the veth and both stacks).
    /// The same holds for a local socket whose own segment goes to its peer (<paramref name="localReplayed"/>):
    /// the peer's ACK of it ends the socket's back-off.
    /// </summary>
    public static KickPlan Plan(IEnumerable<(ConnectionKey Key, FreezeEntry Entry)> released, IReadOnlySet<ConnectionKey>? replayed = null,
        IReadOnlySet<ConnectionKey>? localReplayed = null)
    {
        var plan = new KickPlan();
        foreach ((ConnectionKey key, FreezeEntry entry) in released)
        {
            IPEndPoint local = key.Local, remote = key.Remote;
            int remoteBudget = Budget(entry.RemoteDataDrops), localBudget = Budget(entry.LocalDataDrops);
            if (remoteBudget > 1 && replayed?.Contains(key) == true)
                remoteBudget = 1;
            if (localBudget > 1 && localReplayed?.Contains(key) == true)
                localBudget = 1;
            if (remoteBudget + localBudget == 0)
                continue;
            plan.Connections++;
            // The peer's segment went remote -> local: the peer is its sender and gets the message.
            plan.Add(destination: remote, quotedSource: remote, quotedDestination: local, entry.RemoteSequence ?? 0, remoteBudget);
            // The local socket's segment went local -> remote; its own stack gets the message.
            plan.Add(destination: local, quotedSource: local, quotedDestination: remote, entry.LocalSequence ?? 0, localBudget);
        }
        return plan;
    }

    /// <summary>Sends a plan from inside <paramref name="ns"/> (where the frozen sockets live).</summary>
    public static KickResult Send(NetworkNamespace ns, KickPlan plan)
    {
        if (plan.Messages.Count == 0)
            return new KickResult(0, 0, 0);
        int sent = 0, failed = 0;
        foreach (AddressFamily family in new[] { AddressFamily.InterNetwork, AddressFamily.InterNetworkV6 })
        {
            List<KickMessage> messages = plan.Messages.FindAll(m => m.Destination.AddressFamily == family);
            if (messages.Count == 0)
                continue;
            using Socket socket = ns.Run(() => OpenRawSocket(family));
            (int s, int f) = SendAll(socket, family, messages);
            sent += s;
            failed += f;
        }
        return new KickResult(plan.Connections, sent, failed);
    }

    private static Socket OpenRawSocket(AddressFamily family)
    {
        Socket socket;
        try
        {
            socket = family == AddressFamily.InterNetwork
                ? new Socket(family, SocketType.Raw, ProtocolType.Icmp)
                : new Socket(family, SocketType.Raw, ProtocolType.IcmpV6);
        }
        catch (SocketException e)
        {
            throw new TcpFreezeException($"open a raw {(family == AddressFamily.InterNetwork ? "ICMP" : "ICMPv6")} socket for the resume kick",
                $"{e.SocketErrorCode} ({e.Message}); the kick needs CAP_NET_RAW in the connections' network namespace (or thaw without the kick)");
        }
        // The socket only sends: filter out every incoming ICMP message so none queues up on it.
        if (family == AddressFamily.InterNetwork)
            socket.SetRawSocketOption(Libc.SOL_RAW, Libc.ICMP_FILTER, BitConverter.GetBytes(uint.MaxValue));
        else
        {
            Span<byte> blockAll = stackalloc byte[32];
            blockAll.Fill(0xFF);
            socket.SetRawSocketOption((int)ProtocolType.IcmpV6, Libc.ICMP6_FILTER, blockAll);
        }
        return socket;
    }

    /// <summary>Sends in batches of up to <see cref="Libc.UIO_MAXIOV"/> messages per sendmmsg(2).</summary>
    private static unsafe (int Sent, int Failed) SendAll(Socket socket, AddressFamily family, List<KickMessage> messages)
    {
        int packetLength = ResumeKickPackets.Length(family);
        int addressLength = family == AddressFamily.InterNetwork ? sizeof(Libc.SockAddrIn) : sizeof(Libc.SockAddrIn6);
        int batch = Math.Min(messages.Count, Libc.UIO_MAXIOV);
        byte* packets = (byte*)NativeMemory.AllocZeroed((nuint)(batch * packetLength));
        byte* addresses = (byte*)NativeMemory.AllocZeroed((nuint)(batch * addressLength));
        var headers = (Libc.MMsgHdr*)NativeMemory.AllocZeroed((nuint)(batch * sizeof(Libc.MMsgHdr)));
        var vectors = (Libc.IoVec*)NativeMemory.AllocZeroed((nuint)(batch * sizeof(Libc.IoVec)));
        int sent = 0, failed = 0;
        try
        {
            for (int start = 0; start < messages.Count; start += batch)
            {
                int count = Math.Min(batch, messages.Count - start);
                for (int i = 0; i < count; i++)
                {
                    KickMessage m = messages[start + i];
                    var packet = new Span<byte>(packets + i * packetLength, packetLength);
                    ResumeKickPackets.Write(packet, m.QuotedSource, m.QuotedDestination, m.Sequence);
                    WriteAddress(new Span<byte>(addresses + i * addressLength, addressLength), m.Destination.Address);
                    vectors[i] = new Libc.IoVec { Base = packets + i * packetLength, Length = (nuint)packetLength };
                    headers[i] = default;
                    headers[i].Header.Name = addresses + i * addressLength;
                    headers[i].Header.NameLength = (uint)addressLength;
                    headers[i].Header.Vector = &vectors[i];
                    headers[i].Header.VectorLength = 1;
                }
                int done = 0;
                while (done < count)
                {
                    int n = Libc.sendmmsg(socket.SafeHandle, headers + done, (uint)(count - done), 0);
                    if (n > 0)
                    {
                        done += n;
                        sent += n;
                        continue;
                    }
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == Libc.EINTR)
                        continue;
                    // One destination the host cannot route to (e.g. its address moved away): skip it.
                    done++;
                    failed++;
                }
            }
        }
        finally
        {
            NativeMemory.Free(packets);
            NativeMemory.Free(addresses);
            NativeMemory.Free(headers);
            NativeMemory.Free(vectors);
        }
        return (sent, failed);
    }

    private static void WriteAddress(Span<byte> sockaddr, IPAddress address)
    {
        sockaddr.Clear();
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            MemoryMarshal.Write(sockaddr, (ushort)Libc.AF_INET);
            address.TryWriteBytes(sockaddr.Slice(4, 4), out _);
        }
        else
        {
            MemoryMarshal.Write(sockaddr, (ushort)Libc.AF_INET6);
            address.TryWriteBytes(sockaddr.Slice(8, 16), out _);
            MemoryMarshal.Write(sockaddr[24..], (uint)address.ScopeId);
        }
    }
}

/// <summary>One ICMP message of a kick: sent to <see cref="Destination"/>, quoting a segment.</summary>
internal readonly record struct KickMessage(IPEndPoint Destination, IPEndPoint QuotedSource, IPEndPoint QuotedDestination, uint Sequence);

/// <summary>The messages one thaw sends.</summary>
internal sealed class KickPlan
{
    public List<KickMessage> Messages { get; } = [];

    /// <summary>Connections with at least one message.</summary>
    public int Connections { get; set; }

    public void Add(IPEndPoint destination, IPEndPoint quotedSource, IPEndPoint quotedDestination, uint sequence, int count)
    {
        for (int i = 0; i < count; i++)
            Messages.Add(new KickMessage(destination, quotedSource, quotedDestination, sequence));
    }
}
