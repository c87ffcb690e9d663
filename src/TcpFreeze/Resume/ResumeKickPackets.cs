using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace TcpFreeze.Resume;

/// <summary>
/// Builds the ICMP messages of the resume kick (RFC 6069, TCP-LD). A destination-unreachable
/// message (IPv4 type 3 code 1, IPv6 type 1 code 0) that quotes a segment of a connection in
/// retransmission back-off, with the quoted sequence number equal to the sender's oldest
/// unacknowledged byte, makes Linux undo one back-off step (tcp_ld_RTO_revert) and retransmit
/// at once when the undone timeout has already passed. Any other sequence number is ignored
/// by the receiving stack, so a wrong guess costs one packet and nothing else.
/// </summary>
/// <remarks>
/// The message quotes the segment as its sender built it: the quoted source is the
/// socket being woken up (the peer for a remote kick, this host for a local one). Only the
/// ICMP part is built: the raw socket adds the outer IP header, and for ICMPv6 the kernel
/// also computes the checksum (it always does on IPPROTO_ICMPV6 raw sockets).
/// </remarks>
internal static class ResumeKickPackets
{
    /// <summary>ICMP header (8) + quoted IPv4 header (20) + the first 8 bytes of TCP.</summary>
    public const int IPv4Length = 8 + 20 + 8;

    /// <summary>ICMPv6 header (8) + quoted IPv6 header (40) + the first 8 bytes of TCP.</summary>
    public const int IPv6Length = 8 + 40 + 8;

    public const byte IcmpDestinationUnreachable = 3, IcmpHostUnreachable = 1;
    public const byte Icmp6DestinationUnreachable = 1, Icmp6NoRoute = 0;

    /// <summary>Length of the message for an address family.</summary>
    public static int Length(AddressFamily family) => family == AddressFamily.InterNetwork ? IPv4Length : IPv6Length;

    /// <summary>
    /// Writes the message quoting the segment <paramref name="source"/> → <paramref name="destination"/>
    /// with sequence number <paramref name="sequence"/> (host order) and returns its length.
    /// </summary>
    public static int Write(Span<byte> packet, IPEndPoint source, IPEndPoint destination, uint sequence)
    {
        if (source.AddressFamily != destination.AddressFamily)
            throw new ArgumentException($"{source} and {destination} are of different address families");
        bool v4 = source.AddressFamily == AddressFamily.InterNetwork;
        int length = v4 ? IPv4Length : IPv6Length;
        Span<byte> p = packet[..length];
        p.Clear();
        Span<byte> tcp;
        if (v4)
        {
            p[0] = IcmpDestinationUnreachable;
            p[1] = IcmpHostUnreachable;
            Span<byte> ip = p.Slice(8, 20);
            ip[0] = 0x45;                                               // version 4, 5 words
            BinaryPrimitives.WriteUInt16BigEndian(ip[2..], 40);         // a bare segment's length
            BinaryPrimitives.WriteUInt16BigEndian(ip[6..], 0x4000);     // don't fragment
            ip[8] = 64;
            ip[9] = (byte)ProtocolType.Tcp;
            source.Address.TryWriteBytes(ip[12..16], out _);
            destination.Address.TryWriteBytes(ip[16..20], out _);
            BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum(ip));
            tcp = p.Slice(28, 8);
        }
        else
        {
            p[0] = Icmp6DestinationUnreachable;
            p[1] = Icmp6NoRoute;
            Span<byte> ip = p.Slice(8, 40);
            ip[0] = 0x60;
            BinaryPrimitives.WriteUInt16BigEndian(ip[4..], 20);         // a bare segment's payload length
            ip[6] = (byte)ProtocolType.Tcp;
            ip[7] = 64;
            source.Address.TryWriteBytes(ip[8..24], out _);
            destination.Address.TryWriteBytes(ip[24..40], out _);
            tcp = p.Slice(48, 8);
        }
        BinaryPrimitives.WriteUInt16BigEndian(tcp, (ushort)source.Port);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], (ushort)destination.Port);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], sequence);
        if (v4)
            BinaryPrimitives.WriteUInt16BigEndian(p[2..], Checksum(p));
        return length;
    }

    /// <summary>The Internet checksum (RFC 1071) of <paramref name="data"/>, with its checksum field zero.</summary>
    public static ushort Checksum(ReadOnlySpan<byte> data)
    {
        uint sum = 0;
        int i = 0;
        for (; i + 1 < data.Length; i += 2)
            sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
        if (i < data.Length)
            sum += (uint)data[i] << 8;
        while (sum >> 16 != 0)
            sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)~sum;
    }
}
