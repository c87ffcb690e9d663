using System.Net;

namespace TcpFreeze.Tests;

/// <summary>The socket iterator's records become socket-table entries: one per socket, of the asked namespace only.</summary>
public sealed class SocketIteratorParseTests
{
    private static byte[] Record(ulong inode, uint netns, IPAddress local, ushort localPort, IPAddress remote, ushort remotePort, byte state)
    {
        byte[] r = new byte[SocketIterator.RecordSize];
        BitConverter.TryWriteBytes(r.AsSpan(0), inode);
        BitConverter.TryWriteBytes(r.AsSpan(8), netns);
        local.GetAddressBytes().CopyTo(r, 16);
        remote.GetAddressBytes().CopyTo(r, 32);
        BitConverter.TryWriteBytes(r.AsSpan(48), (ushort)(local.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 2 : 10));
        BitConverter.TryWriteBytes(r.AsSpan(50), localPort);
        r[52] = (byte)(remotePort >> 8);
        r[53] = (byte)remotePort;
        r[54] = state;
        return r;
    }

    [Fact]
    public void Records_of_other_namespaces_and_repeated_inodes_are_left_out_and_a_cut_record_is_ignored()
    {
        byte[] records =
        [
            .. Record(1, 5, IPAddress.Parse("2001:db8::1"), 443, IPAddress.Parse("2001:db8::2"), 50000, 1),
            .. Record(2, 5, IPAddress.IPv6Any, 443, IPAddress.IPv6Any, 0, 10),
            .. Record(3, 6, IPAddress.Parse("198.18.0.1"), 80, IPAddress.Parse("198.18.0.2"), 1234, 1), // another namespace
            .. Record(1, 5, IPAddress.Parse("2001:db8::1"), 443, IPAddress.Parse("2001:db8::2"), 50000, 1), // the same socket, another descriptor
            .. Record(4, 5, IPAddress.Parse("198.18.0.1"), 80, IPAddress.Parse("198.18.0.3"), 1235, 1).AsSpan(0, 30).ToArray(), // cut short
        ];
        var entries = new List<ProcNetTcpEntry>();
        SocketIterator.Parse(records, 5, [], entries);
        Assert.Equal(
            [
                new ProcNetTcpEntry(IPEndPoint.Parse("[2001:db8::1]:443"), IPEndPoint.Parse("[2001:db8::2]:50000"), TcpSocketState.Established, 1),
                new ProcNetTcpEntry(new IPEndPoint(IPAddress.IPv6Any, 443), new IPEndPoint(IPAddress.IPv6Any, 0), TcpSocketState.Listen, 2),
            ],
            entries);

        var all = new List<ProcNetTcpEntry>();
        SocketIterator.Parse(records, 0, [], all);
        Assert.Equal([1UL, 2UL, 3UL], all.Select(e => e.Inode));
    }

    [Theory]
    [InlineData("5.15.0", "the kernel (5.15) is older than 6.1, whose task iterators walk one process")]
    [InlineData("6.0.19", "the kernel (6.0) is older than 6.1, whose task iterators walk one process")]
    [InlineData("6.1.0", null)]
    [InlineData("6.18.44", null)]
    [InlineData("7.0", null)]
    public void Kernels_before_6_1_are_refused_because_they_walk_every_task(string version, string? refusal)
        => Assert.Equal(refusal, SocketIterator.KernelTooOld(Version.Parse(version)));
}
