using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace TcpFreeze.Resume;

/// <summary>
/// The replay: right after a thaw, hands each released connection's local socket the last
/// data segment its peer sent while frozen (kept by the programs, <see cref="ReplayRecord"/>),
/// through a raw socket into this host's own stack. The socket takes the data and acknowledges
/// it, and the peer's TCP, which was backing off, resumes at once on that ACK of new data
/// (RFC 6298, 5.3): no ICMP has to reach the peer and no feature of its TCP is needed. Its mirror
/// sends the peer the last data segment the local socket sent while frozen (tf_replay_local), as
/// the socket's own retransmission would be: a reply the freeze caught on its way out reaches the
/// peer at once, although a socket CRIU restored would resend it only on its fresh timer (about
/// 1 s) and no ICMP can shorten a timer that has not backed off. See RESUME.md for what was measured.
/// </summary>
/// <remarks>
/// <para>Why it never delivers a byte twice or out of order: the segment is one its sender really
/// sent, so its bytes are the connection's bytes at its sequence numbers, and the receiving stack
/// runs it through the same checks as any arriving segment. If the receiver already has those
/// bytes (the sender's own retransmission came first) TCP drops it as a duplicate and sends a
/// duplicate ACK; bytes beyond what it expects go to the out-of-order queue and are delivered
/// only once the gap is filled; a segment outside the window, or older than the receiver's last
/// timestamp (PAWS), is dropped. The replay only saves the sender the wait for its timer.</para>
/// <para>Where it goes: only to the connection's own local address (the peer's segment) or its own
/// remote address (the local socket's), and only a packet whose addresses and ports are the
/// released connection's in that direction (checked here against the key), so nothing reaches
/// any other address.</para>
/// </remarks>
internal static class SegmentReplay
{
    /// <summary>
    /// The packet to send for <paramref name="key"/> from a record, or null when the record does
    /// not fit the key in its direction, is not a plain TCP segment, or fails its checksum.
    /// <paramref name="toPeer"/> false: a segment the peer sent (remote to local), for the local
    /// stack; true: one the local socket sent (local to remote), for the peer.
    /// A record that kept only part of the segment is cut to what it kept: the IP length says so
    /// and a FIN, which would come after the missing bytes, is cleared. The TCP checksum is
    /// computed afresh: frames handed over by a veth, and segments leaving a socket of this host,
    /// carry only the pseudo-header's sum (checksum offload), which the receiving stack would refuse.
    /// </summary>
    public static byte[]? Build(ConnectionKey key, PeerSegment recordedSegment, bool toPeer = false)
    {
        IPEndPoint sender = toPeer ? key.Local : key.Remote, receiver = toPeer ? key.Remote : key.Local;
        bool v4 = sender.AddressFamily == AddressFamily.InterNetwork;
        byte[] recorded = recordedSegment.Packet;
        uint ipLength = recordedSegment.IpLength;
        if (recorded.Length < (v4 ? 40 : 60) || recorded.Length > ipLength)
            return null;
        int tcpOffset = v4 ? (recorded[0] & 0xF) * 4 : 40;
        if (recorded.Length < tcpOffset + 20)
            return null;
        if (v4 ? (recorded[0] >> 4 != 4 || (recorded[0] & 0xF) * 4 != tcpOffset || recorded[9] != (byte)ProtocolType.Tcp)
               : (recorded[0] >> 4 != 6 || tcpOffset != 40 || recorded[6] != (byte)ProtocolType.Tcp))
            return null; // IPv6 extension headers are not replayed: rare, and a routing header changes the checksum's addresses
        ReadOnlySpan<byte> source = v4 ? recorded.AsSpan(12, 4) : recorded.AsSpan(8, 16);
        ReadOnlySpan<byte> destination = v4 ? recorded.AsSpan(16, 4) : recorded.AsSpan(24, 16);
        Span<byte> tcp = recorded.AsSpan(tcpOffset);
        if (!source.SequenceEqual(sender.Address.GetAddressBytes()) || !destination.SequenceEqual(receiver.Address.GetAddressBytes())
            || BinaryPrimitives.ReadUInt16BigEndian(tcp) != sender.Port || BinaryPrimitives.ReadUInt16BigEndian(tcp[2..]) != receiver.Port)
            return null;
        int headerLength = (tcp[12] >> 4) * 4;
        byte flags = tcp[13];
        const byte Fin = 0x01, Syn = 0x02, Rst = 0x04;
        if (headerLength < 20 || tcpOffset + headerLength > recorded.Length || (flags & (Syn | Rst)) != 0)
            return null;
        bool complete = recorded.Length == ipLength;
        if (complete && !ChecksumAcceptable(source, destination, tcp))
            return null;
        byte[] packet = (byte[])recorded.Clone();
        Span<byte> segment = packet.AsSpan(tcpOffset);
        if (v4)
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), (ushort)packet.Length); // the kernel refills the header checksum
        else
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(4), (ushort)(packet.Length - 40));
        if (!complete)
            segment[13] &= unchecked((byte)~Fin);
        if (segment.Length == headerLength && (segment[13] & Fin) == 0)
            return null; // nothing left that the receiver would acknowledge as new
        segment[16] = segment[17] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(segment[16..], TcpChecksum(source, destination, segment));
        return packet;
    }

    /// <summary>
    /// The local socket's recorded segment with its TCP timestamp (TSval) set back by
    /// <paramref name="milliseconds"/>: to the moment of the connection's first drop, where the
    /// record is a later retransmission. Why: a socket CRIU dumps goes on retransmitting in repair
    /// mode after CRIU has read its timestamp clock (TCP_TIMESTAMP), and the freeze keeps the last of
    /// those; the restored socket's clock resumes from the value CRIU read. Sent as it was, the record
    /// would move the peer's last seen timestamp ahead of the restored socket's clock, and the peer would
    /// drop the socket's next segments as old (PAWS) until that clock caught up, about 1 s of silence
    /// right after the replayed bytes (measured here under load; RESUME.md). The first drop's moment is
    /// after every segment the peer took before the freeze and before CRIU reads the clock, so the
    /// peer takes the segment and the restored socket's later ones. Linux's TSval counts milliseconds.
    /// The TCP checksum is recomputed when the record holds the whole segment. A record without the
    /// option, or <paramref name="milliseconds"/> 0, comes back as it was.
    /// </summary>
    public static PeerSegment WithTimestampBackdated(PeerSegment recorded, uint milliseconds)
    {
        byte[] packet = recorded.Packet;
        if (milliseconds == 0 || packet.Length < 40)
            return recorded;
        bool v4 = packet[0] >> 4 == 4;
        int tcpOffset = v4 ? (packet[0] & 0xF) * 4 : 40;
        if (packet.Length < tcpOffset + 20)
            return recorded;
        int headerLength = (packet[tcpOffset + 12] >> 4) * 4;
        if (headerLength <= 20 || tcpOffset + headerLength > packet.Length)
            return recorded;
        for (int i = tcpOffset + 20; i < tcpOffset + headerLength;)
        {
            byte kind = packet[i];
            if (kind == 0)
                break;
            if (kind == 1)
            {
                i++;
                continue;
            }
            if (i + 1 >= tcpOffset + headerLength)
                break;
            int length = packet[i + 1];
            if (length < 2)
                break;
            if (kind == 8 && length == 10 && i + 10 <= tcpOffset + headerLength)
            {
                byte[] copy = (byte[])packet.Clone();
                uint tsval = BinaryPrimitives.ReadUInt32BigEndian(copy.AsSpan(i + 2));
                BinaryPrimitives.WriteUInt32BigEndian(copy.AsSpan(i + 2), unchecked(tsval - milliseconds));
                if (copy.Length == recorded.IpLength)
                {
                    ReadOnlySpan<byte> source = v4 ? copy.AsSpan(12, 4) : copy.AsSpan(8, 16);
                    ReadOnlySpan<byte> destination = v4 ? copy.AsSpan(16, 4) : copy.AsSpan(24, 16);
                    Span<byte> segment = copy.AsSpan(tcpOffset);
                    // Only a segment whose checksum held before is given a right one: a damaged one stays damaged.
                    if (!ChecksumAcceptable(source, destination, packet.AsSpan(tcpOffset)))
                        return recorded;
                    segment[16] = segment[17] = 0;
                    BinaryPrimitives.WriteUInt16BigEndian(segment[16..], TcpChecksum(source, destination, segment));
                }
                return recorded with { Packet = copy };
            }
            i += length;
        }
        return recorded;
    }

    /// <summary>
    /// How far to set back the timestamp of a local segment recorded at <paramref name="recordedNs"/>
    /// for a connection whose first drop was at <paramref name="firstDropNs"/> (CLOCK_MONOTONIC), in
    /// whole milliseconds, rounded down (see <see cref="WithTimestampBackdated"/>).
    /// </summary>
    public static uint BackdateMilliseconds(ulong recordedNs, ulong firstDropNs)
        => firstDropNs == 0 || recordedNs <= firstDropNs ? 0 : (uint)Math.Min((recordedNs - firstDropNs) / 1_000_000, uint.MaxValue / 2);

    /// <summary>
    /// Whether a complete segment's checksum is either right, or the pseudo-header's sum that a
    /// sender with checksum offload leaves for the device (a veth hands such frames over as they
    /// are): anything else was damaged on the way, and the stack would have dropped it.
    /// </summary>
    internal static bool ChecksumAcceptable(ReadOnlySpan<byte> source, ReadOnlySpan<byte> destination, ReadOnlySpan<byte> segment)
    {
        if (Sum(source, destination, segment, includeSegment: true) == 0xFFFF)
            return true;
        ushort partial = Sum(source, destination, segment, includeSegment: false);
        return BinaryPrimitives.ReadUInt16BigEndian(segment[16..]) == partial;
    }

    /// <summary>The TCP checksum of <paramref name="segment"/> (its checksum field zero) between two addresses.</summary>
    internal static ushort TcpChecksum(ReadOnlySpan<byte> source, ReadOnlySpan<byte> destination, ReadOnlySpan<byte> segment)
    {
        ushort sum = (ushort)~Sum(source, destination, segment, includeSegment: true);
        return sum == 0 ? (ushort)0xFFFF : sum;
    }

    /// <summary>The folded one's complement sum of the pseudo-header, and of the segment if asked.</summary>
    private static ushort Sum(ReadOnlySpan<byte> source, ReadOnlySpan<byte> destination, ReadOnlySpan<byte> segment, bool includeSegment)
    {
        ulong sum = 0;
        void Add(ReadOnlySpan<byte> data)
        {
            int i = 0;
            for (; i + 1 < data.Length; i += 2)
                sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
            if (i < data.Length)
                sum += (uint)data[i] << 8;
        }
        Add(source);
        Add(destination);
        sum += (uint)ProtocolType.Tcp + (uint)segment.Length; // both pseudo-header forms sum the same
        if (includeSegment)
            Add(segment);
        while (sum >> 16 != 0)
            sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)sum;
    }

    /// <summary>
    /// The packets for the connections a thaw released: each one's peer segment recorded here
    /// during the freeze, or else the one recorded on another host (<paramref name="elsewhere"/>:
    /// a restore whose programs saw no retransmission of the peer yet), for the local stack; and
    /// each one's own segment recorded here, or else the one the other host recorded (a socket
    /// CRIU restored here resends it only on its fresh timer, so this host has none), for the peer.
    /// </summary>
    public static List<ReplayPacket> Plan(List<(ConnectionKey Key, FreezeEntry Entry)> released,
        TakenReplays recorded, SegmentsFromElsewhere elsewhere)
    {
        var packets = new List<ReplayPacket>();
        foreach ((ConnectionKey key, FreezeEntry entry) in released)
        {
            PeerSegment? segment = recorded.Peer.TryGetValue(key, out KeptSegment? record) ? record.ToPeerSegment()
                : elsewhere.Peer?.GetValueOrDefault(key);
            if (segment is not null && Build(key, segment) is { } packet)
                packets.Add(new ReplayPacket(key, packet, ToPeer: false));
            PeerSegment? own = recorded.Local.TryGetValue(key, out KeptSegment? ownRecord)
                ? WithTimestampBackdated(ownRecord.ToPeerSegment(), BackdateMilliseconds(ownRecord.RecordedNs, entry.FirstDropNs))
                : elsewhere.Local?.GetValueOrDefault(key); // set back where it was read (TcpFreezer.ReadLocalSegments)
            if (own is not null && Build(key, own, toPeer: true) is { } outgoing)
                packets.Add(new ReplayPacket(key, outgoing, ToPeer: true));
        }
        return packets;
    }

    /// <summary>
    /// Sends the packets from inside <paramref name="ns"/> (where the sockets live), each to its
    /// connection's local address (a peer's segment) or remote address (the local socket's). Says
    /// how many of each went out, and the first error (no CAP_NET_RAW) if some could not.
    /// </summary>
    public static ReplayOutcome Send(NetworkNamespace ns, IReadOnlyList<ReplayPacket> packets)
    {
        int peerSent = 0, localSent = 0, failed = 0;
        string? error = null;
        foreach (AddressFamily family in new[] { AddressFamily.InterNetwork, AddressFamily.InterNetworkV6 })
        {
            var mine = packets.Where(p => p.Key.Local.AddressFamily == family).ToList();
            if (mine.Count == 0)
                continue;
            Socket socket;
            try
            {
                // IPPROTO_RAW: the packet carries its own IP header (IP_HDRINCL, implied for
                // IPv6 too since Linux 4.5), source address and all.
                socket = ns.Run(() => new Socket(family, SocketType.Raw, ProtocolType.Raw));
            }
            catch (SocketException e)
            {
                error ??= $"open a raw {(family == AddressFamily.InterNetwork ? "IPv4" : "IPv6")} socket for the replay: {e.SocketErrorCode} ({e.Message}); " +
                          "the replay needs CAP_NET_RAW in the connections' network namespace";
                failed += mine.Count;
                continue;
            }
            using (socket)
            {
                foreach (ReplayPacket packet in mine)
                {
                    try
                    {
                        socket.SendTo(packet.Packet, new IPEndPoint(packet.Destination, 0));
                        _ = packet.ToPeer ? localSent++ : peerSent++;
                    }
                    catch (SocketException)
                    {
                        // The address is gone (moved away) or unreachable: nothing to hand the segment to.
                        failed++;
                    }
                }
            }
        }
        return new ReplayOutcome(peerSent, localSent, failed, error);
    }
}

/// <summary>
/// One packet of the replay: a segment of <see cref="Key"/>'s peer for the local stack, or
/// (<see cref="ToPeer"/>) one of the local socket's for the peer.
/// </summary>
internal readonly record struct ReplayPacket(ConnectionKey Key, byte[] Packet, bool ToPeer)
{
    /// <summary>Where it goes: always one of the connection's own two addresses.</summary>
    public IPAddress Destination => ToPeer ? Key.Remote.Address : Key.Local.Address;
}

/// <summary>
/// Segments another host kept for connections a thaw here releases (a restore after a migration):
/// the peers' (<see cref="Peer"/>) and the local sockets' (<see cref="Local"/>); either may be null.
/// </summary>
internal readonly record struct SegmentsFromElsewhere(
    IReadOnlyDictionary<ConnectionKey, PeerSegment>? Peer, IReadOnlyDictionary<ConnectionKey, PeerSegment>? Local);

/// <summary>What the replay sent: peers' segments to the local sockets, the local sockets' to their peers, failures.</summary>
internal readonly record struct ReplayOutcome(int PeerSegments, int LocalSegments, int Failed, string? Error);
