using System.Buffers.Binary;
using System.Net;
using TcpFreeze.Resume;

namespace TcpFreeze.Tests;

/// <summary>
/// The replay sends a kept segment only in the direction it was kept: a peer's segment into the local stack,
/// the local socket's own to the peer. A segment whose addresses or ports are not the connection's in that
/// direction is refused, so neither direction can send anything to an address that is not an end of the
/// connection. What is sent carries a checksum the receiver accepts.
/// </summary>
public sealed class SegmentReplayDirectionTests
{
    private static readonly ConnectionKey V4 = new(IPEndPoint.Parse("198.18.0.2:7000"), IPEndPoint.Parse("198.18.0.1:40000"));
    private static readonly ConnectionKey V6 = new(IPEndPoint.Parse("[2001:db8::2]:7000"), IPEndPoint.Parse("[2001:db8::1]:40000"));

    public static TheoryData<bool> Families => new() { true, false };

    [Theory]
    [MemberData(nameof(Families))]
    public void The_local_sockets_own_segment_goes_to_the_peer_only_and_with_a_checksum_the_peer_accepts(bool v4)
    {
        ConnectionKey key = v4 ? V4 : V6;
        PeerSegment own = Segment(key.Local, key.Remote, "a reply the freeze caught"u8);

        byte[]? outgoing = SegmentReplay.Build(key, own, toPeer: true);

        Assert.NotNull(outgoing);
        AssertChecksumRight(outgoing, v4);
        // The same bytes read as a peer's segment are not the connection's in that direction: nothing to send.
        Assert.Null(SegmentReplay.Build(key, own, toPeer: false));
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void A_peers_segment_goes_to_the_local_stack_only(bool v4)
    {
        ConnectionKey key = v4 ? V4 : V6;
        PeerSegment peers = Segment(key.Remote, key.Local, "a request"u8);

        byte[]? incoming = SegmentReplay.Build(key, peers, toPeer: false);

        Assert.NotNull(incoming);
        AssertChecksumRight(incoming, v4);
        Assert.Null(SegmentReplay.Build(key, peers, toPeer: true));
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void A_segment_of_another_connection_is_sent_in_neither_direction(bool v4)
    {
        ConnectionKey key = v4 ? V4 : V6;
        IPEndPoint stranger = v4 ? IPEndPoint.Parse("198.18.0.9:40000") : IPEndPoint.Parse("[2001:db8::9]:40000");
        PeerSegment other = Segment(key.Local, stranger, "not this connection's"u8);

        Assert.Null(SegmentReplay.Build(key, other, toPeer: true));
        Assert.Null(SegmentReplay.Build(key, other, toPeer: false));
    }

    /// <summary>
    /// The local socket's segment goes out with its TCP timestamp set back to the connection's first drop, so that the
    /// peer's last seen timestamp never runs ahead of the clock of the socket CRIU restored (RESUME.md, "The mirror"):
    /// only TSval changes, and the checksum is right.
    /// </summary>
    [Theory]
    [MemberData(nameof(Families))]
    public void The_local_segments_timestamp_is_set_back_by_the_time_since_the_first_drop(bool v4)
    {
        ConnectionKey key = v4 ? V4 : V6;
        // NOP, NOP, timestamps (kind 8, length 10): TSval 1,000,000, TSecr 777.
        byte[] options = [1, 1, 8, 10, 0, 0x0F, 0x42, 0x40, 0, 0, 0x03, 0x09];
        PeerSegment own = Segment(key.Local, key.Remote, "a reply the freeze caught"u8, options);
        int tsval = (v4 ? 20 : 40) + 20 + 4;

        uint back = SegmentReplay.BackdateMilliseconds(recordedNs: 5_000_900_000, firstDropNs: 1_000_000_000);
        PeerSegment backdated = SegmentReplay.WithTimestampBackdated(own, back);
        byte[]? outgoing = SegmentReplay.Build(key, backdated, toPeer: true);

        Assert.Equal(4_000u, back);
        Assert.NotNull(outgoing);
        Assert.Equal(1_000_000u - 4_000u, BinaryPrimitives.ReadUInt32BigEndian(outgoing.AsSpan(tsval)));
        Assert.Equal(777u, BinaryPrimitives.ReadUInt32BigEndian(outgoing.AsSpan(tsval + 4)));
        AssertChecksumRight(outgoing, v4);
        // Every other byte is the recorded one (the checksum field aside).
        int checksum = (v4 ? 20 : 40) + 16;
        bool Kept(int i) => (i < tsval || i >= tsval + 4) && i != checksum && i != checksum + 1;
        Assert.Equal(own.Packet.Where((_, i) => Kept(i)), backdated.Packet.Where((_, i) => Kept(i)));
        Assert.Same(own, SegmentReplay.WithTimestampBackdated(own, 0));
        Assert.Equal(0u, SegmentReplay.BackdateMilliseconds(recordedNs: 5, firstDropNs: 0));
    }

    /// <summary>An IP packet with a TCP segment (ACK and PSH, payload) from <paramref name="source"/> to <paramref name="destination"/>, its checksum as a checksum-offloading sender leaves it (the pseudo-header's sum).</summary>
    private static PeerSegment Segment(IPEndPoint source, IPEndPoint destination, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> options = default)
    {
        bool v4 = source.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork;
        int ipHeader = v4 ? 20 : 40, tcpHeader = 20 + options.Length, length = ipHeader + tcpHeader + payload.Length;
        var packet = new byte[length];
        byte[] from = source.Address.GetAddressBytes(), to = destination.Address.GetAddressBytes();
        if (v4)
        {
            packet[0] = 0x45;
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), (ushort)length);
            packet[8] = 64;
            packet[9] = 6;
            from.CopyTo(packet, 12);
            to.CopyTo(packet, 16);
        }
        else
        {
            packet[0] = 0x60;
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(4), (ushort)(length - 40));
            packet[6] = 6;
            packet[7] = 64;
            from.CopyTo(packet, 8);
            to.CopyTo(packet, 24);
        }
        Span<byte> tcp = packet.AsSpan(ipHeader);
        BinaryPrimitives.WriteUInt16BigEndian(tcp, (ushort)source.Port);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], (ushort)destination.Port);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], 1_000_000);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[8..], 2_000_000);
        tcp[12] = (byte)(tcpHeader / 4 << 4);
        tcp[13] = 0x18;
        BinaryPrimitives.WriteUInt16BigEndian(tcp[14..], 502);
        options.CopyTo(tcp[20..]);
        payload.CopyTo(tcp[tcpHeader..]);
        // The pseudo-header's sum, folded: what a sender with checksum offload leaves in the field.
        ulong sum = 6 + (ulong)tcp.Length;
        foreach (byte[] address in new[] { from, to })
            for (int i = 0; i < address.Length; i += 2)
                sum += BinaryPrimitives.ReadUInt16BigEndian(address.AsSpan(i));
        while (sum >> 16 != 0)
            sum = (sum & 0xFFFF) + (sum >> 16);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[16..], (ushort)sum);
        Assert.True(SegmentReplay.ChecksumAcceptable(from, to, tcp), "the test's own offload-style checksum");
        return new PeerSegment(packet, (uint)length);
    }

    private static void AssertChecksumRight(byte[] packet, bool v4)
    {
        int ipHeader = v4 ? 20 : 40;
        ReadOnlySpan<byte> from = v4 ? packet.AsSpan(12, 4) : packet.AsSpan(8, 16), to = v4 ? packet.AsSpan(16, 4) : packet.AsSpan(24, 16);
        byte[] tcp = packet[ipHeader..];
        ushort carried = BinaryPrimitives.ReadUInt16BigEndian(tcp.AsSpan(16));
        tcp[16] = tcp[17] = 0;
        Assert.Equal(SegmentReplay.TcpChecksum(from, to, tcp), carried);
    }
}
