using System.Buffers.Binary;
using System.Net;

namespace TcpFreeze.Tests.Infrastructure;

/// <summary>Builds Ethernet frames carrying TCP (or other) segments for BPF_PROG_TEST_RUN.</summary>
public static class Packets
{
    public const ushort EtherIPv4 = 0x0800, EtherIPv6 = 0x86DD, EtherVlan = 0x8100, EtherArp = 0x0806;

    public static byte[] Tcp(IPEndPoint source, IPEndPoint destination, int ipv4OptionBytes = 0, int vlanTags = 0, byte protocol = 6,
        byte[]? ipv6Extension = null, ushort fragmentOffset = 0)
    {
        var frame = new List<byte>();
        frame.AddRange(new byte[12]); // MAC addresses
        bool v6 = source.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;
        for (int i = 0; i < vlanTags; i++)
        {
            AddU16(frame, EtherVlan);
            AddU16(frame, 42); // TCI
        }
        AddU16(frame, v6 ? EtherIPv6 : EtherIPv4);
        byte[] tcp = TcpHeader(source.Port, destination.Port);
        if (!v6)
        {
            int headerLength = 20 + ipv4OptionBytes;
            frame.Add((byte)(0x40 | headerLength / 4));
            frame.Add(0);
            AddU16(frame, (ushort)(headerLength + tcp.Length));
            AddU16(frame, 1);
            AddU16(frame, fragmentOffset);
            frame.Add(64);
            frame.Add(protocol);
            AddU16(frame, 0);
            frame.AddRange(source.Address.GetAddressBytes());
            frame.AddRange(destination.Address.GetAddressBytes());
            for (int i = 0; i < ipv4OptionBytes; i++)
                frame.Add(1); // NOP options
        }
        else
        {
            byte[] extension = ipv6Extension ?? [];
            frame.AddRange([0x60, 0, 0, 0]);
            AddU16(frame, (ushort)(extension.Length + tcp.Length));
            frame.Add(extension.Length > 0 ? (byte)0 /* hop-by-hop */ : protocol);
            frame.Add(64);
            frame.AddRange(source.Address.GetAddressBytes());
            frame.AddRange(destination.Address.GetAddressBytes());
            frame.AddRange(extension);
        }
        frame.AddRange(tcp);
        return frame.ToArray();
    }

    /// <summary>An 8-byte hop-by-hop options header (PadN) whose next header is TCP.</summary>
    public static byte[] HopByHopThenTcp => [6, 0, 1, 4, 0, 0, 0, 0];

    public static byte[] Arp() => [.. new byte[12], 0x08, 0x06, .. new byte[28]];

    private static byte[] TcpHeader(int sourcePort, int destinationPort)
    {
        var header = new byte[20];
        BinaryPrimitives.WriteUInt16BigEndian(header, (ushort)sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(2), (ushort)destinationPort);
        header[12] = 0x50;
        header[13] = 0x18; // PSH|ACK
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
