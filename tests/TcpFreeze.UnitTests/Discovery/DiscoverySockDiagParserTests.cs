extern alias TcpFreezeAssembly;

using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
// Interop.Libc is linked into all three src assemblies; the tests read TcpFreeze's copy (the one with sock_diag).
using Libc = TcpFreezeAssembly::Interop.Libc;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// The sock_diag reply parser, on bytes crafted by hand at the offsets of
/// linux/netlink.h and linux/inet_diag.h (not through the C# structs it uses).
/// </summary>
public class DiscoverySockDiagParserTests
{
    private const uint Sequence = 2;

    [Fact]
    public void Ipv4_record_gives_endpoints_state_and_inode()
    {
        // 198.18.0.1:8080 <-> 198.18.0.2:40000, ESTABLISHED
        byte[] record = Record(Libc.AF_INET, state: 1, "198.18.0.1", 8080, "198.18.0.2", 40000, inode: 777);

        ProcNetTcpEntry entry = SockDiag.ReadSocket(record);

        Assert.Equal(IPEndPoint.Parse("198.18.0.1:8080"), entry.Local);
        Assert.Equal(IPEndPoint.Parse("198.18.0.2:40000"), entry.Remote);
        Assert.Equal(TcpSocketState.Established, entry.State);
        Assert.Equal(777UL, entry.Inode);
    }

    [Fact]
    public void Ipv6_record_gives_all_sixteen_address_bytes()
    {
        byte[] record = Record(Libc.AF_INET6, state: 8, "2001:db8::1", 443, "2001:db8::2", 50001, inode: 4242);

        ProcNetTcpEntry entry = SockDiag.ReadSocket(record);

        Assert.Equal(IPEndPoint.Parse("[2001:db8::1]:443"), entry.Local);
        Assert.Equal(IPEndPoint.Parse("[2001:db8::2]:50001"), entry.Remote);
        Assert.Equal(TcpSocketState.CloseWait, entry.State);
        Assert.Equal(4242UL, entry.Inode);
    }

    [Fact]
    public void Ipv4_mapped_record_stays_mapped_and_becomes_an_ipv4_key()
    {
        byte[] record = Record(Libc.AF_INET6, state: 1, "::ffff:198.18.0.1", 8080, "::ffff:198.18.0.2", 40000, inode: 99);

        ProcNetTcpEntry entry = SockDiag.ReadSocket(record);

        Assert.Equal(IPAddress.Parse("::ffff:198.18.0.1"), entry.Local.Address); // as /proc/net/tcp6 prints it
        Assert.Equal(ConnectionKey.Parse("198.18.0.1:8080", "198.18.0.2:40000"), new ConnectionKey(entry.Local, entry.Remote));
    }

    [Fact]
    public void Ipv6_any_listener_record_parses()
    {
        byte[] record = Record(Libc.AF_INET6, state: 10, "::", 22, "::", 0, inode: 106);
        ProcNetTcpEntry entry = SockDiag.ReadSocket(record);
        Assert.Equal(new IPEndPoint(IPAddress.IPv6Any, 22), entry.Local);
        Assert.Equal(TcpSocketState.Listen, entry.State);
    }

    [Fact]
    public void Datagram_keeps_the_wanted_sockets_skips_attributes_and_other_requests_and_ends_at_done()
    {
        byte[] datagram = Datagram(
            Message(Libc.SOCK_DIAG_BY_FAMILY, Sequence, Record(Libc.AF_INET, 10, "198.18.0.1", 8080, "0.0.0.0", 0, inode: 1001, attributeBytes: 8)),
            Message(Libc.SOCK_DIAG_BY_FAMILY, Sequence, Record(Libc.AF_INET, 1, "198.18.0.1", 8080, "198.18.0.2", 40000, inode: 2002)), // not wanted
            Message(Libc.SOCK_DIAG_BY_FAMILY, Sequence + 1, Record(Libc.AF_INET, 1, "198.18.0.1", 8080, "198.18.0.3", 40001, inode: 1003)), // another request's
            Message(Libc.NLMSG_NOOP, Sequence, []),
            Message(Libc.SOCK_DIAG_BY_FAMILY, Sequence, Record(Libc.AF_INET, 1, "198.18.0.1", 8080, "198.18.0.4", 40002, inode: 1004, attributeBytes: 5)),
            Message(Libc.NLMSG_DONE, Sequence, Int(0)),
            Message(Libc.SOCK_DIAG_BY_FAMILY, Sequence, Record(Libc.AF_INET, 1, "198.18.0.1", 8080, "198.18.0.5", 40003, inode: 1005))); // after the end
        var sockets = new List<ProcNetTcpEntry>();

        bool done = SockDiag.ReadDatagram(datagram, Sequence, [1001, 1003, 1004, 1005], sockets, out int errno);

        Assert.True(done);
        Assert.Equal(0, errno);
        Assert.Equal([1001UL, 1004UL], sockets.Select(s => s.Inode));
    }

    [Fact]
    public void Datagram_without_done_asks_for_more()
    {
        byte[] datagram = Datagram(Message(Libc.SOCK_DIAG_BY_FAMILY, Sequence, Record(Libc.AF_INET, 1, "198.18.0.1", 1, "198.18.0.2", 2, inode: 5)));
        var sockets = new List<ProcNetTcpEntry>();
        Assert.False(SockDiag.ReadDatagram(datagram, Sequence, null, sockets, out _));
        Assert.Single(sockets);
    }

    [Theory]
    [InlineData(Libc.NLMSG_ERROR, -2, 2)]    // ENOENT: no inet_diag handler for the family
    [InlineData(Libc.NLMSG_ERROR, -22, 22)]  // EINVAL
    [InlineData(Libc.NLMSG_DONE, -4, 4)]     // a dump that failed part-way (EINTR)
    public void Kernel_errors_end_the_dump_with_their_errno(ushort type, int error, int expected)
    {
        byte[] datagram = Datagram(Message(type, Sequence, [.. Int(error), .. new byte[16]]));
        Assert.True(SockDiag.ReadDatagram(datagram, Sequence, null, [], out int errno));
        Assert.Equal(expected, errno);
    }

    [Fact]
    public void Short_socket_record_is_refused()
    {
        byte[] datagram = Datagram(Message(Libc.SOCK_DIAG_BY_FAMILY, Sequence, new byte[40]));
        var e = Assert.Throws<FormatException>(() => SockDiag.ReadDatagram(datagram, Sequence, null, [], out _));
        Assert.Contains("inet_diag_msg", e.Message);
    }

    [Fact]
    public void Message_longer_than_the_datagram_is_refused()
    {
        byte[] datagram = Datagram(Message(Libc.SOCK_DIAG_BY_FAMILY, Sequence, Record(Libc.AF_INET, 1, "198.18.0.1", 1, "198.18.0.2", 2, inode: 5)));
        BinaryPrimitives.WriteUInt32LittleEndian(datagram, (uint)datagram.Length + 4);
        Assert.Throws<FormatException>(() => SockDiag.ReadDatagram(datagram, Sequence, null, [], out _));
        Assert.Throws<FormatException>(() => SockDiag.ReadDatagram(datagram.AsSpan(0, 10), Sequence, null, [], out _)); // cut header
    }

    [Fact]
    public void Record_of_another_family_is_refused()
    {
        byte[] record = Record(Libc.AF_INET, 1, "198.18.0.1", 1, "198.18.0.2", 2, inode: 5);
        record[0] = 1; // AF_UNIX
        Assert.Throws<FormatException>(() => SockDiag.ReadSocket(record));
    }

    [Fact]
    public void Dumped_states_leave_out_time_wait_close_and_request_sockets()
    {
        foreach (TcpSocketState state in Enum.GetValues<TcpSocketState>())
        {
            bool dumped = (SockDiag.DumpedStates & (1u << (int)state)) != 0;
            bool expected = state is not (TcpSocketState.TimeWait or TcpSocketState.Close or TcpSocketState.NewSynReceived or TcpSocketState.BoundInactive);
            Assert.True(dumped == expected, $"{state} dumped: {dumped}");
        }
    }

    [Theory]
    [InlineData("socket:[12345]", true, 12345UL)]
    [InlineData("socket:[4294967295]", true, 4294967295UL)]
    [InlineData("socket:[]", false, 0UL)]
    [InlineData("socket:[12x]", false, 0UL)]
    [InlineData("socket:[123", false, 0UL)]
    [InlineData("pipe:[12345]", false, 0UL)]
    [InlineData("/dev/null", false, 0UL)]
    [InlineData("", false, 0UL)]
    public void Descriptor_link_bytes_name_socket_inodes(string target, bool isSocket, ulong inode)
    {
        Assert.Equal(isSocket, DescriptorScan.TryParseSocketInode(System.Text.Encoding.ASCII.GetBytes(target), out ulong parsed));
        Assert.Equal(inode, parsed);
    }

    /// <summary>struct inet_diag_msg, written field by field at the header's offsets.</summary>
    private static byte[] Record(byte family, byte state, string local, ushort localPort, string remote, ushort remotePort, uint inode, int attributeBytes = 0)
    {
        var record = new byte[72 + attributeBytes];
        record[0] = family;
        record[1] = state;
        BinaryPrimitives.WriteUInt16BigEndian(record.AsSpan(4), localPort);   // idiag_sport, __be16
        BinaryPrimitives.WriteUInt16BigEndian(record.AsSpan(6), remotePort);  // idiag_dport
        IPAddress.Parse(local).GetAddressBytes().CopyTo(record, 8);           // idiag_src, __be32[4]
        IPAddress.Parse(remote).GetAddressBytes().CopyTo(record, 24);         // idiag_dst
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(40), 7);       // idiag_if
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(64), 1000);    // idiag_uid
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(68), inode);   // idiag_inode
        for (int i = 72; i < record.Length; i++)
            record[i] = 0xEE; // attributes the parser must step over
        return record;
    }

    /// <summary>struct nlmsghdr (host byte order) and the payload, padded to 4 bytes.</summary>
    private static byte[] Message(ushort type, uint sequence, byte[] payload)
    {
        var message = new byte[(16 + payload.Length + 3) & ~3];
        BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)(16 + payload.Length));
        BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(4), type);
        BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(6), 0x2); // NLM_F_MULTI
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(8), sequence);
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(12), 4321);
        payload.CopyTo(message, 16);
        return message;
    }

    private static byte[] Datagram(params byte[][] messages) => messages.SelectMany(m => m).ToArray();

    private static byte[] Int(int value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, value);
        return bytes;
    }
}

/// <summary>The managed mirrors of the netlink, sock_diag and dirent structs match the C headers.</summary>
public class DiscoverySockDiagLayoutTests
{
    [Fact]
    public void Structs_match_the_kernel_headers_byte_for_byte()
    {
        CLayout c = CLayout.Measure("""
            #define _GNU_SOURCE
            #include <dirent.h>
            #include <sys/time.h>
            #include <linux/netlink.h>
            #include <linux/sock_diag.h>
            #include <linux/inet_diag.h>
            """, """
                S(nlmsghdr); O(nlmsghdr, nlmsg_len); O(nlmsghdr, nlmsg_type); O(nlmsghdr, nlmsg_flags); O(nlmsghdr, nlmsg_seq); O(nlmsghdr, nlmsg_pid);
                S(sockaddr_nl); O(sockaddr_nl, nl_family); O(sockaddr_nl, nl_pid); O(sockaddr_nl, nl_groups);
                S(nlmsgerr); O(nlmsgerr, error); O(nlmsgerr, msg);
                S(inet_diag_sockid); O(inet_diag_sockid, idiag_sport); O(inet_diag_sockid, idiag_dport); O(inet_diag_sockid, idiag_src);
                O(inet_diag_sockid, idiag_dst); O(inet_diag_sockid, idiag_if); O(inet_diag_sockid, idiag_cookie);
                S(inet_diag_req_v2); O(inet_diag_req_v2, sdiag_family); O(inet_diag_req_v2, sdiag_protocol); O(inet_diag_req_v2, idiag_ext);
                O(inet_diag_req_v2, idiag_states); O(inet_diag_req_v2, id);
                S(inet_diag_msg); O(inet_diag_msg, idiag_family); O(inet_diag_msg, idiag_state); O(inet_diag_msg, id); O(inet_diag_msg, idiag_expires);
                O(inet_diag_msg, idiag_rqueue); O(inet_diag_msg, idiag_wqueue); O(inet_diag_msg, idiag_uid); O(inet_diag_msg, idiag_inode);
                S(timeval);
                O(dirent64, d_reclen); O(dirent64, d_name);
                printf("NETLINK_SOCK_DIAG %d\nSOCK_DIAG_BY_FAMILY %d\nNLM_F_DUMP %d\nNLMSG_DONE %d\nNLMSG_ERROR %d\n",
                       NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, NLMSG_DONE, NLMSG_ERROR);
            """);

        c.AssertSize<Libc.NlMsgHdr>("nlmsghdr");
        c.AssertOffset<Libc.NlMsgHdr>("nlmsghdr.nlmsg_len", nameof(Libc.NlMsgHdr.Length));
        c.AssertOffset<Libc.NlMsgHdr>("nlmsghdr.nlmsg_type", nameof(Libc.NlMsgHdr.Type));
        c.AssertOffset<Libc.NlMsgHdr>("nlmsghdr.nlmsg_flags", nameof(Libc.NlMsgHdr.Flags));
        c.AssertOffset<Libc.NlMsgHdr>("nlmsghdr.nlmsg_seq", nameof(Libc.NlMsgHdr.Sequence));
        c.AssertOffset<Libc.NlMsgHdr>("nlmsghdr.nlmsg_pid", nameof(Libc.NlMsgHdr.PortId));
        c.AssertSize<Libc.SockAddrNl>("sockaddr_nl");
        c.AssertOffset<Libc.SockAddrNl>("sockaddr_nl.nl_family", nameof(Libc.SockAddrNl.Family));
        c.AssertOffset<Libc.SockAddrNl>("sockaddr_nl.nl_pid", nameof(Libc.SockAddrNl.PortId));
        c.AssertOffset<Libc.SockAddrNl>("sockaddr_nl.nl_groups", nameof(Libc.SockAddrNl.Groups));
        c.AssertSize<Libc.NlMsgErr>("nlmsgerr");
        c.AssertOffset<Libc.NlMsgErr>("nlmsgerr.error", nameof(Libc.NlMsgErr.Error));
        c.AssertOffset<Libc.NlMsgErr>("nlmsgerr.msg", nameof(Libc.NlMsgErr.Message));
        c.AssertSize<Libc.InetDiagSockId>("inet_diag_sockid");
        foreach ((string f, string m) in new[] { ("idiag_sport", "SourcePort"), ("idiag_dport", "DestinationPort"), ("idiag_src", "Source"),
                     ("idiag_dst", "Destination"), ("idiag_if", "Interface"), ("idiag_cookie", "Cookie") })
            c.AssertOffset<Libc.InetDiagSockId>($"inet_diag_sockid.{f}", m);
        c.AssertSize<Libc.InetDiagReqV2>("inet_diag_req_v2");
        foreach ((string f, string m) in new[] { ("sdiag_family", "Family"), ("sdiag_protocol", "Protocol"), ("idiag_ext", "Extensions"),
                     ("idiag_states", "States"), ("id", "Id") })
            c.AssertOffset<Libc.InetDiagReqV2>($"inet_diag_req_v2.{f}", m);
        c.AssertSize<Libc.InetDiagMsg>("inet_diag_msg");
        foreach ((string f, string m) in new[] { ("idiag_family", "Family"), ("idiag_state", "State"), ("id", "Id"), ("idiag_expires", "Expires"),
                     ("idiag_rqueue", "ReceiveQueue"), ("idiag_wqueue", "SendQueue"), ("idiag_uid", "Uid"), ("idiag_inode", "Inode") })
            c.AssertOffset<Libc.InetDiagMsg>($"inet_diag_msg.{f}", m);
        Assert.Equal(c["nlmsghdr"] + c["inet_diag_req_v2"], Marshal.SizeOf<Libc.InetDiagRequest>());
        c.AssertSize<Libc.TimeVal>("timeval");
        c.AssertSame("dirent64.d_reclen", Libc.DirentLengthOffset);
        c.AssertSame("dirent64.d_name", Libc.DirentNameOffset);
        c.AssertSame("NETLINK_SOCK_DIAG", Libc.NETLINK_SOCK_DIAG);
        c.AssertSame("SOCK_DIAG_BY_FAMILY", Libc.SOCK_DIAG_BY_FAMILY);
        c.AssertSame("NLM_F_DUMP", Libc.NLM_F_DUMP);
        c.AssertSame("NLMSG_DONE", Libc.NLMSG_DONE);
        c.AssertSame("NLMSG_ERROR", Libc.NLMSG_ERROR);
    }
}
