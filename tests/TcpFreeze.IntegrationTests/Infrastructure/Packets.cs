using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace TcpFreeze.Tests.Infrastructure;

/// <summary>
/// One IPv6 extension header in a <see cref="Frame"/>. <paramref name="Length"/> is its whole
/// size in bytes (a multiple of 8 for the option and routing headers, of 4 for AH; the
/// fragment header is always 8). <paramref name="FragmentField"/> is the fragment
/// header's offset-and-flags word (offset in 8-byte units in the top 13 bits, M in bit 0).
/// </summary>
public sealed record Ipv6ExtensionHeader(byte Kind, int Length = 8, ushort FragmentField = 0)
{
    public const byte HopByHopKind = 0, RoutingKind = 43, FragmentKind = 44, AuthenticationKind = 51, DestinationOptionsKind = 60;

    public static Ipv6ExtensionHeader HopByHop(int length = 8) => new(HopByHopKind, length);

    /// <summary>The 8-bit length field as the header's kind encodes it.</summary>
    public byte LengthField => Kind switch
    {
        FragmentKind => 0,
        AuthenticationKind => (byte)(Length / 4 - 2),
        _ => (byte)(Length / 8 - 1),
    };

    public override string ToString() => Kind == FragmentKind ? $"frag(0x{FragmentField:X4})" : $"ext{Kind}({Length})";
}

/// <summary>
/// The shape of an Ethernet frame carrying a TCP segment (or something that looks like
/// one): VLAN tags, IPv4 options and fragment field, IPv6 extension headers, the
/// transport protocol number and the TCP flags. <see cref="Packets.Build"/> writes it.
/// </summary>
public sealed record Frame(IPEndPoint Source, IPEndPoint Destination)
{
    /// <summary>The TPIDs of the VLAN tags, outermost first (0x8100 or 0x88A8).</summary>
    public ushort[] VlanTags { get; init; } = [];

    /// <summary>When set, the ethertype after the tags instead of IPv4/IPv6 (the IP header is still written).</summary>
    public ushort? EtherTypeOverride { get; init; }

    /// <summary>IPv4 option bytes (NOPs); a multiple of 4, at most 40.</summary>
    public int Ipv4OptionBytes { get; init; }

    /// <summary>The IPv4 flags-and-fragment-offset word (DF 0x4000, MF 0x2000, offset in 8-byte units).</summary>
    public ushort Ipv4FragmentField { get; init; }

    /// <summary>The IPv4 protocol, or the last IPv6 next-header value.</summary>
    public byte Protocol { get; init; } = 6;

    public Ipv6ExtensionHeader[] Ipv6Extensions { get; init; } = [];

    /// <summary>TCP header byte 13 (CWR ECE URG ACK PSH RST SYN FIN).</summary>
    public byte TcpFlags { get; init; } = 0x18;

    public bool IsIPv6 => Source.Address.AddressFamily == AddressFamily.InterNetworkV6;

    /// <summary>Where the transport header starts in the built frame.</summary>
    public int TransportOffset
        => 14 + 4 * VlanTags.Length + (IsIPv6 ? 40 + Ipv6Extensions.Sum(e => e.Length) : 20 + Ipv4OptionBytes);

    public override string ToString()
        => $"{Source}->{Destination} vlan[{string.Join(",", VlanTags.Select(t => t.ToString("X4")))}]"
           + (EtherTypeOverride is { } type ? $" ethertype 0x{type:X4}" : "")
           + (IsIPv6 ? $" ext[{string.Join(",", Ipv6Extensions.Select(e => e.ToString()))}]" : $" opt {Ipv4OptionBytes} frag 0x{Ipv4FragmentField:X4}")
           + $" proto {Protocol} flags 0x{TcpFlags:X2}";
}

/// <summary>Builds Ethernet frames carrying TCP (or other) segments for BPF_PROG_TEST_RUN.</summary>
public static class Packets
{
    public const ushort EtherIPv4 = 0x0800, EtherIPv6 = 0x86DD, EtherVlan = 0x8100, EtherQinQ = 0x88A8, EtherArp = 0x0806;

    public static byte[] Tcp(IPEndPoint source, IPEndPoint destination, int ipv4OptionBytes = 0, int vlanTags = 0, byte protocol = 6,
        Ipv6ExtensionHeader[]? ipv6Extensions = null, ushort fragmentOffset = 0)
        => Build(new Frame(source, destination)
        {
            VlanTags = Enumerable.Repeat(EtherVlan, vlanTags).ToArray(),
            Ipv4OptionBytes = ipv4OptionBytes,
            Protocol = protocol,
            Ipv6Extensions = ipv6Extensions ?? [],
            Ipv4FragmentField = fragmentOffset,
        });

    /// <summary>One 8-byte hop-by-hop options header (PadN) whose next header is TCP.</summary>
    public static Ipv6ExtensionHeader[] HopByHopThenTcp => [Ipv6ExtensionHeader.HopByHop()];

    /// <summary>Writes <paramref name="frame"/>: MACs, tags, ethertype, IP header (with options or extension headers), a 20-byte TCP header.</summary>
    public static byte[] Build(Frame frame)
    {
        var bytes = new List<byte>();
        bytes.AddRange(new byte[12]); // MAC addresses
        foreach (ushort tpid in frame.VlanTags)
        {
            AddU16(bytes, tpid);
            AddU16(bytes, 42); // TCI
        }
        AddU16(bytes, frame.EtherTypeOverride ?? (frame.IsIPv6 ? EtherIPv6 : EtherIPv4));
        byte[] tcp = TcpHeader(frame.Source.Port, frame.Destination.Port, frame.TcpFlags);
        if (!frame.IsIPv6)
        {
            int headerLength = 20 + frame.Ipv4OptionBytes;
            bytes.Add((byte)(0x40 | headerLength / 4));
            bytes.Add(0);
            AddU16(bytes, (ushort)(headerLength + tcp.Length));
            AddU16(bytes, 1);
            AddU16(bytes, frame.Ipv4FragmentField);
            bytes.Add(64);
            bytes.Add(frame.Protocol);
            AddU16(bytes, 0);
            bytes.AddRange(frame.Source.Address.GetAddressBytes());
            bytes.AddRange(frame.Destination.Address.GetAddressBytes());
            for (int i = 0; i < frame.Ipv4OptionBytes; i++)
                bytes.Add(1); // NOP options
        }
        else
        {
            Ipv6ExtensionHeader[] extensions = frame.Ipv6Extensions;
            bytes.AddRange([0x60, 0, 0, 0]);
            AddU16(bytes, (ushort)(extensions.Sum(e => e.Length) + tcp.Length));
            bytes.Add(extensions.Length > 0 ? extensions[0].Kind : frame.Protocol);
            bytes.Add(64);
            bytes.AddRange(frame.Source.Address.GetAddressBytes());
            bytes.AddRange(frame.Destination.Address.GetAddressBytes());
            for (int i = 0; i < extensions.Length; i++)
                bytes.AddRange(ExtensionHeader(extensions[i], i + 1 < extensions.Length ? extensions[i + 1].Kind : frame.Protocol));
        }
        bytes.AddRange(tcp);
        return bytes.ToArray();
    }

    public static byte[] Arp() => [.. new byte[12], 0x08, 0x06, .. new byte[28]];

    private static byte[] ExtensionHeader(Ipv6ExtensionHeader header, byte next)
    {
        var bytes = new byte[header.Length];
        bytes[0] = next;
        bytes[1] = header.LengthField;
        if (header.Kind == Ipv6ExtensionHeader.FragmentKind)
            BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(2), header.FragmentField);
        else if (header.Kind is Ipv6ExtensionHeader.HopByHopKind or Ipv6ExtensionHeader.DestinationOptionsKind)
        {
            bytes[2] = 1; // PadN over the rest
            bytes[3] = (byte)(header.Length - 4);
        }
        return bytes;
    }

    private static byte[] TcpHeader(int sourcePort, int destinationPort, byte flags)
    {
        var header = new byte[20];
        BinaryPrimitives.WriteUInt16BigEndian(header, (ushort)sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(2), (ushort)destinationPort);
        header[12] = 0x50;
        header[13] = flags;
        return header;
    }

    private static void AddU16(List<byte> frame, ushort value)
    {
        frame.Add((byte)(value >> 8));
        frame.Add((byte)value);
    }

    /// <summary>A struct __sk_buff for a TC test run with <paramref name="mark"/> set (mark is at offset 8).</summary>
    public static byte[] SkbContextWithMark(uint mark)
    {
        var context = new byte[192];
        BinaryPrimitives.WriteUInt32LittleEndian(context.AsSpan(8), mark);
        return context;
    }
}
