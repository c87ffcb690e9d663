using System.Net;
using System.Net.Sockets;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>The /proc/net/tcp line parser: addresses, ports, states and inodes as the kernel prints them.</summary>
public class DiscoveryParserTests
{
    [Fact]
    public void Ipv4_address_is_the_little_endian_word_as_printed()
    {
        ProcNetTcpEntry entry = ProcNetTcp.ParseLine(
            "   0: 0100007F:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000   101        0 12345 1 0000000006acd69d 100 0 0 10 0");
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 53), entry.Local);
        Assert.Equal(new IPEndPoint(IPAddress.Any, 0), entry.Remote);
        Assert.Equal(TcpSocketState.Listen, entry.State);
        Assert.Equal(12345UL, entry.Inode);
    }

    [Fact]
    public void Established_ipv4_connection_has_both_endpoints()
    {
        // 198.18.0.1:8080 <-> 198.18.0.2:40000
        ProcNetTcpEntry entry = ProcNetTcp.ParseLine(
            "   3: 010012C6:1F90 020012C6:9C40 01 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000085af6985 20 4 30 10 -1");
        Assert.Equal(IPEndPoint.Parse("198.18.0.1:8080"), entry.Local);
        Assert.Equal(IPEndPoint.Parse("198.18.0.2:40000"), entry.Remote);
        Assert.Equal(TcpSocketState.Established, entry.State);
        Assert.Equal(777UL, entry.Inode);
    }

    [Fact]
    public void Ipv6_address_is_four_host_order_words()
    {
        // [2001:db8::1]:443 <-> [2001:db8:0:0:0:0:0:2]:50001
        ProcNetTcpEntry entry = ProcNetTcp.ParseLine(
            "   0: B80D0120000000000000000001000000:01BB B80D0120000000000000000002000000:C351 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 20 4 30 10 -1");
        Assert.Equal(IPEndPoint.Parse("[2001:db8::1]:443"), entry.Local);
        Assert.Equal(IPEndPoint.Parse("[2001:db8::2]:50001"), entry.Remote);
        Assert.Equal(4242UL, entry.Inode);
    }

    [Fact]
    public void Ipv4_mapped_ipv6_connection_becomes_an_ipv4_key()
    {
        ProcNetTcpEntry entry = ProcNetTcp.ParseLine(
            "   1: 0000000000000000FFFF0000010012C6:1F90 0000000000000000FFFF0000020012C6:9C40 01 00000000:00000000 00:00000000 00000000     0        0 99 1 0000000000000000 20 4 30 10 -1");
        Assert.Equal(IPAddress.Parse("::ffff:198.18.0.1"), entry.Local.Address);
        var key = new ConnectionKey(entry.Local, entry.Remote);
        Assert.Equal(ConnectionKey.Parse("198.18.0.1:8080", "198.18.0.2:40000"), key);
    }

    [Fact]
    public void Any_address_ipv6_listener_parses()
    {
        ProcNetTcpEntry entry = ProcNetTcp.ParseLine(
            "   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 106 1 0000000006acd69d 100 0 0 10 0");
        Assert.Equal(new IPEndPoint(IPAddress.IPv6Any, 22), entry.Local);
        Assert.Equal(TcpSocketState.Listen, entry.State);
    }

    [Fact]
    public void Time_wait_line_has_inode_zero()
    {
        ProcNetTcpEntry entry = ProcNetTcp.ParseLine(
            "   1: 020200C0:B268 507100CB:0050 06 00000000:00000000 03:00001146 00000000     0        0 0 3 0000000085af6985");
        Assert.Equal(TcpSocketState.TimeWait, entry.State);
        Assert.Equal(0UL, entry.Inode);
    }

    [Fact]
    public void Header_lines_are_recognised()
    {
        Assert.True(ProcNetTcp.IsHeader("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"));
        Assert.False(ProcNetTcp.IsHeader("   0: 0100007F:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000   101        0 1 1"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("   0: 0100007F:0035 00000000:0000 0A")]                                                          // too few fields
    [InlineData("   0: 0100007:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1")]          // 7 hex digits
    [InlineData("   0: 0100007G:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1")]          // not hex
    [InlineData("   0: 0100007F:035 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1")]           // 3-digit port
    [InlineData("   0: 0100007F0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1")]           // no colon
    [InlineData("   0: 0100007F:0035 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1")] // mixed families
    [InlineData("   0: 0100007F:0035 00000000:0000 XY 00000000:00000000 00:00000000 00000000 0 0 1 1")]          // state
    [InlineData("   0: 0100007F:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 -1 1")]         // inode
    public void Malformed_lines_are_refused(string line)
    {
        Assert.Throws<FormatException>(() => ProcNetTcp.ParseLine(line));
    }

    [Theory]
    [InlineData("socket:[12345]", true, 12345UL)]
    [InlineData("socket:[]", false, 0UL)]
    [InlineData("pipe:[12345]", false, 0UL)]
    [InlineData("/dev/null", false, 0UL)]
    [InlineData(null, false, 0UL)]
    public void Descriptor_links_name_socket_inodes(string? target, bool isSocket, ulong inode)
    {
        Assert.Equal(isSocket, DescriptorScan.TryParseSocketInode(target, out ulong parsed));
        Assert.Equal(inode, parsed);
    }
}

/// <summary>Discovery over a fake /proc tree: process tree walk, per-thread tables, dedupe and state filtering.</summary>
public sealed class DiscoveryFakeProcTests : IDisposable
{
    private readonly string _proc = Path.Combine(Path.GetTempPath(), $"tcpfreeze-fakeproc-{Guid.NewGuid():N}");

    public DiscoveryFakeProcTests()
    {
        Directory.CreateDirectory(_proc);
        Directory.CreateDirectory(Path.Combine(_proc, "sys")); // not a process
        Process(100, "100 (server) S 1 100 100 0 -1", thread: 100, "socket:[1001]", "socket:[1002]", "pipe:[9]", "/dev/null", "socket:[1007]", "socket:[1009]", "socket:[1010]", "socket:[1011]");
        Thread(100, 105, "socket:[1005]"); // a thread with a descriptor table of its own
        Process(101, "101 (odd) name) (x) S 100 100 100 0 -1", thread: 101, "socket:[1001]", "socket:[1003]"); // inherited listener, own connection
        Process(102, "102 (grandchild) S 101 100 100 0 -1", thread: 102, "socket:[1006]", "socket:[1008]");
        Process(200, "200 (stranger) S 1 200 200 0 -1", thread: 200, "socket:[1004]");
        Tables(
            tcp:
            [
                Line("010012C6:1F90", "00000000:0000", "0A", 1001),  // LISTEN 198.18.0.1:8080
                Line("010012C6:1F90", "020012C6:9C40", "01", 1002),  // ESTABLISHED 198.18.0.1:8080 <- 198.18.0.2:40000
                Line("010012C6:AFC8", "090112C6:01BB", "01", 1003),  // child: 198.18.0.1:45000 -> 198.18.1.9:443
                Line("010012C6:AFC9", "090112C6:01BB", "01", 1004),  // the stranger's
                Line("010012C6:1F90", "030012C6:9C41", "08", 1005),  // thread 105: CLOSE_WAIT
                Line("010012C6:1F90", "040012C6:9C42", "06", 0),     // TIME_WAIT, held by nobody
                Line("010012C6:2710", "00000000:0000", "07", 1009),  // bound only (CLOSE)
                Line("010012C6:AFCA", "090112C6:0050", "02", 1010),  // SYN_SENT
                Line("010012C6:1F90", "050012C6:9C43", "06", 1011),  // TIME_WAIT (inode kept only for the test)
            ],
            tcp6:
            [
                Line("00000000000000000000000000000000:2382", "00000000000000000000000000000000:0000", "0A", 1006), // [::]:9090
                Line("0000000000000000FFFF0000010012C6:2382", "0000000000000000FFFF0000030012C6:C350", "01", 1007), // mapped
                Line("B80D0120000000000000000001000000:2382", "B80D0120000000000000000002000000:C351", "01", 1008),
            ]);
    }

    [Fact]
    public void Finds_the_sockets_of_the_whole_tree_and_nothing_else()
    {
        DiscoveredSockets found = ProcessSockets.Discover(100, _proc);

        Assert.Equal(100, found.RootPid);
        Assert.Equal([100, 101, 102], found.Pids);
        Assert.Equal(
            new[]
            {
                ConnectionKey.Parse("198.18.0.1:8080", "198.18.0.2:40000"),
                ConnectionKey.Parse("198.18.0.1:45000", "198.18.1.9:443"),
                ConnectionKey.Parse("198.18.0.1:8080", "198.18.0.3:40001"),
                ConnectionKey.Parse("198.18.0.1:45002", "198.18.1.9:80"),
                ConnectionKey.Parse("198.18.0.1:9090", "198.18.0.3:50000"),
                ConnectionKey.Parse("[2001:db8::1]:9090", "[2001:db8::2]:50001"),
            }.OrderBy(k => k.ToString()),
            found.Connections.OrderBy(k => k.ToString()));
        Assert.Equal(
            new[] { EndpointKey.Parse("198.18.0.1:8080"), EndpointKey.Parse("[::]:9090"), EndpointKey.Parse("0.0.0.0:9090") }.OrderBy(k => k.ToString()),
            found.Listeners.OrderBy(k => k.ToString()));
    }

    [Fact]
    public void A_child_is_discovered_with_only_its_own_descendants()
    {
        DiscoveredSockets found = ProcessSockets.Discover(102, _proc);
        Assert.Equal([102], found.Pids);
        Assert.Equal([ConnectionKey.Parse("[2001:db8::1]:9090", "[2001:db8::2]:50001")], found.Connections);
        Assert.Equal(2, found.Listeners.Count);
    }

    [Fact]
    public void Unknown_pid_in_the_tree_is_a_clear_error()
    {
        var e = Assert.Throws<TcpFreezeException>(() => ProcessSockets.Discover(4242, _proc));
        Assert.Contains("no process has PID 4242", e.Message);
    }

    [Fact]
    public void A_process_that_vanished_mid_scan_is_left_out()
    {
        Directory.Delete(Path.Combine(_proc, "102", "task"), recursive: true);
        DiscoveredSockets found = ProcessSockets.Discover(100, _proc);
        Assert.Equal([100, 101], found.Pids);
        Assert.DoesNotContain(ConnectionKey.Parse("[2001:db8::1]:9090", "[2001:db8::2]:50001"), found.Connections);
    }

    private static string Line(string local, string remote, string state, ulong inode)
        => $"   0: {local} {remote} {state} 00000000:00000000 00:00000000 00000000     0        0 {inode} 1 0000000000000000 20 4 30 10 -1";

    private void Process(int pid, string stat, int thread, params string[] links)
    {
        string directory = Path.Combine(_proc, pid.ToString());
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "stat"), stat + "\n");
        Thread(pid, thread, links);
    }

    private void Thread(int pid, int tid, params string[] links)
    {
        string fd = Path.Combine(_proc, pid.ToString(), "task", tid.ToString(), "fd");
        Directory.CreateDirectory(fd);
        for (int i = 0; i < links.Length; i++)
            File.CreateSymbolicLink(Path.Combine(fd, (i + 3).ToString()), links[i]);
    }

    /// <summary>Every fake process is in one namespace, so each gets the same tables.</summary>
    private void Tables(string[] tcp, string[] tcp6)
    {
        const string Header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";
        foreach (string process in Directory.EnumerateDirectories(_proc).Where(d => char.IsAsciiDigit(Path.GetFileName(d)[0])))
        {
            string net = Path.Combine(process, "net");
            Directory.CreateDirectory(net);
            File.WriteAllLines(Path.Combine(net, "tcp"), [Header, .. tcp]);
            File.WriteAllLines(Path.Combine(net, "tcp6"), [Header, .. tcp6]);
        }
    }

    public void Dispose() => Directory.Delete(_proc, recursive: true);
}
