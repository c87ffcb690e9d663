using System.Net;
using System.Net.Sockets;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>Discovery of real processes in namespaces of the test's own.</summary>
public class DiscoveryTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    [Fact]
    public void Nonexistent_pid_is_a_clear_error()
    {
        var e = Assert.Throws<TcpFreezeException>(() => ProcessSockets.Discover(int.MaxValue));
        Assert.Contains($"no process has PID {int.MaxValue}", e.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    public void Non_positive_pid_is_out_of_range(int pid)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ProcessSockets.Discover(pid));
    }

    [Fact]
    public void Thread_id_is_refused_with_its_process_named()
    {
        int self = Environment.ProcessId;
        string? thread = Directory.EnumerateDirectories($"/proc/{self}/task").Select(Path.GetFileName).FirstOrDefault(t => t != self.ToString());
        Assert.NotNull(thread); // the test host always runs several threads
        var e = Assert.Throws<TcpFreezeException>(() => ProcessSockets.Discover(int.Parse(thread)));
        Assert.Contains($"is a thread of process {self}", e.Message);
    }

    [RootFact]
    [Trait("Privileges", "root")]
    public void Live_sockets_are_found_by_exact_connection_and_by_covering_endpoint_in_the_callers_namespace_only()
    {
        using TestNetwork network = TestNetwork.Create();
        IPAddress b4 = network.AddressB(AddressFamily.InterNetwork), b6 = network.AddressB(AddressFamily.InterNetworkV6);
        using var pair = TcpPair.Open(network.A, network.B, new IPEndPoint(b4, 9100));
        using var pair6 = TcpPair.Open(network.A, network.B, new IPEndPoint(b6, 9101));
        using Socket dualStack = TcpPair.Listen(network.B, new IPEndPoint(IPAddress.IPv6Any, 9102));
        var phantom = ConnectionKey.Parse($"{b4}:9100 -> 198.18.250.1:40000");

        IReadOnlyList<LiveSocket> Find(ConnectionKey[] connections, params string[] endpoints)
            => network.B.Run(() => ProcessSockets.FindLiveSockets(connections, endpoints.Select(EndpointKey.Parse)));

        LiveSocket exact = Assert.Single(Find([pair.ServerView, phantom]));
        Assert.Equal(pair.ServerView.ToString(), exact.Listed);
        Assert.Equal("Established", exact.State);
        Assert.Single(Find([pair6.ServerView]));
        Assert.Empty(Find([pair.ClientView])); // the other side's view is namespace A's socket

        // An endpoint covers the listener and every connection on its port: exact address or any-address either way.
        Assert.Equal(2, Find([], $"{b4}:9100").Count);
        Assert.Equal(2, Find([], "0.0.0.0:9100").Count);
        Assert.Equal(2, Find([], "[::]:9101").Count);
        Assert.Empty(Find([], $"{b4}:9101", "198.18.250.9:9100"));
        // A dual-stack [::] listener also takes IPv4: 0.0.0.0 and any IPv4 address on its port cover it.
        Assert.Single(Find([], "0.0.0.0:9102"));
        Assert.Single(Find([], $"{b4}:9102"));
        // The same keys asked in namespace A find only A's own sockets.
        Assert.Empty(network.A.Run(() => ProcessSockets.FindLiveSockets([pair.ServerView], [EndpointKey.Parse("0.0.0.0:9100")])));
    }

    [RootFact]
    [Trait("Privileges", "root")]
    public void Collisions_are_the_exact_connections_and_the_listeners_whether_looked_up_one_by_one_or_read_from_the_whole_table()
    {
        using TestNetwork network = TestNetwork.Create();
        IPAddress b4 = network.AddressB(AddressFamily.InterNetwork), b6 = network.AddressB(AddressFamily.InterNetworkV6);
        using var pair = TcpPair.Open(network.A, network.B, new IPEndPoint(b4, 9120));
        using var pair6 = TcpPair.Open(network.A, network.B, new IPEndPoint(b6, 9121));
        using Socket dualStack = TcpPair.Listen(network.B, new IPEndPoint(IPAddress.IPv6Any, 9122));
        var phantom = ConnectionKey.Parse($"{b4}:9120 -> 198.18.250.1:40000");
        EndpointKey[] endpoints = [EndpointKey.Parse($"{b4}:9120"), EndpointKey.Parse("[::]:9121"), EndpointKey.Parse("0.0.0.0:9122"), EndpointKey.Parse($"{b4}:9123")];
        ConnectionKey[] few = [pair.ServerView, phantom, pair6.ServerView, pair.ClientView];
        // More than the one-by-one lookups take: the whole table is read instead.
        ConnectionKey[] many = [.. few, .. Enumerable.Range(1, 70).Select(i => ConnectionKey.Parse($"{b4}:9120 -> 198.18.250.2:{40000 + i}"))];

        string[] Text(IEnumerable<LiveSocket> live) => [.. live.Select(l => $"{l.Listed} {l} {l.Inode}").Order(StringComparer.Ordinal)];
        string[] fast = network.B.Run(() => Text(ProcessSockets.FindCollisions(few, endpoints)));
        string[] slow = network.B.Run(() => Text(ProcessSockets.FindCollisions(many, endpoints)));
        // What FindLiveSockets reports, less the connections that are not listed themselves (they only share a port).
        string[] full = network.B.Run(() => Text(ProcessSockets.FindLiveSockets(few, endpoints)
            .Where(l => l.Remote is null ? l.State == "Listen" : few.Contains(new ConnectionKey(l.Local, l.Remote)))));

        Assert.Equal(5, fast.Length); // two connections, the listeners of 9120 and 9121, the dual-stack one of 9122
        Assert.Equal(full, fast);
        Assert.Equal(full, slow);
        Assert.Contains(fast, l => l.Contains(pair.ServerView.ToString(), StringComparison.Ordinal) && l.Contains("(Established)", StringComparison.Ordinal));
        Assert.DoesNotContain(fast, l => l.Contains("198.18.250", StringComparison.Ordinal));
        // Asked in namespace A, B's sockets are not there.
        Assert.Empty(network.A.Run(() => ProcessSockets.FindCollisions([pair.ServerView], endpoints)));
    }

    [RootFact]
    [Trait("Privileges", "root")]
    public void A_connection_its_owner_closed_does_not_count_as_live_but_a_half_closed_held_one_does()
    {
        using TestNetwork network = TestNetwork.Create();
        IPAddress b4 = network.AddressB(AddressFamily.InterNetwork);
        using var closed = TcpPair.Open(network.A, network.B, new IPEndPoint(b4, 9110));
        using var halfClosed = TcpPair.Open(network.A, network.B, new IPEndPoint(b4, 9111));
        ConnectionKey closedView = closed.ServerView;
        // The server closes first and the peer does not (an HTTP/1.0 server; a frozen peer): FIN_WAIT2, held by no descriptor.
        closed.Listener.Close();
        closed.Server.Close();
        // The same state, but the socket is still held by its owner, who only shut down its sending side.
        halfClosed.Listener.Close();
        halfClosed.Server.Shutdown(SocketShutdown.Send);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        string states = "";
        while (clock.Elapsed < Wait && !(states.Contains(":9110 ", StringComparison.Ordinal) && states.Contains(":9111 ", StringComparison.Ordinal)))
        {
            states = Run.Checked("nsenter", $"--net=/run/netns/{network.NameB}", "ss", "-Htn", "state", "fin-wait-2");
            Thread.Sleep(20);
        }
        Assert.Contains(":9110 ", states);
        Assert.Contains(":9111 ", states);

        Assert.Empty(network.B.Run(() => ProcessSockets.FindLiveSockets([], [EndpointKey.Parse($"{b4}:9110")])));
        LiveSocket held = Assert.Single(network.B.Run(() => ProcessSockets.FindLiveSockets([], [EndpointKey.Parse($"{b4}:9111")])));
        Assert.Equal("FinWait2", held.State);
        // Nor by its exact 4-tuple: a manifest lists connections found at pre-dump that the server closed before CRIU
        // dumped them; CRIU did not dump them (no descriptor), so the restore cannot collide with what is left of them.
        Assert.Empty(network.B.Run(() => ProcessSockets.FindLiveSockets([closedView], [])));
        Assert.Single(network.B.Run(() => ProcessSockets.FindLiveSockets([halfClosed.ServerView], [])));
        // The same through the kernel's one-by-one lookups a restore uses.
        Assert.Empty(network.B.Run(() => ProcessSockets.FindCollisions([closedView], [])));
        Assert.Equal("FinWait2", Assert.Single(network.B.Run(() => ProcessSockets.FindCollisions([halfClosed.ServerView], []))).State);
    }

    [RootFact]
    [Trait("Privileges", "root")]
    public void Finds_every_connection_and_listener_of_a_process_tree()
    {
        using TestNetwork network = TestNetwork.Create();
        IPAddress a4 = network.AddressA(AddressFamily.InterNetwork), a6 = network.AddressA(AddressFamily.InterNetworkV6);
        IPAddress b4 = network.AddressB(AddressFamily.InterNetwork), b6 = network.AddressB(AddressFamily.InterNetworkV6);
        using Socket peer4 = TcpPair.Listen(network.B, new IPEndPoint(b4, 9001));
        using Socket peer6 = TcpPair.Listen(network.B, new IPEndPoint(b6, 9001));
        // The script tree listens on 7001-7003, accepts on 7002 and 7003, and connects out to 9001 (twice, and once from its child).
        using var script = SocketTreeScript.Start(network, basePort: 7000, peerPort: 9001, accepting: "23", halfCloseIpv6: false);
        var held = new List<Socket>();
        try
        {
            script.Expect("listening", Wait);
            // IPv4 to the dual-stack listener: the accepted socket shows as ::ffff:... in tcp6.
            Socket in4 = TcpPair.NewClient(network.B, AddressFamily.InterNetwork);
            held.Add(in4);
            in4.Connect(new IPEndPoint(a4, 7002));
            Socket in6 = TcpPair.NewClient(network.B, AddressFamily.InterNetworkV6);
            held.Add(in6);
            in6.Connect(new IPEndPoint(a6, 7003));
            Socket out4 = TcpPair.Accept(peer4, Wait), out6 = TcpPair.Accept(peer6, Wait), child4 = TcpPair.Accept(peer4, Wait);
            held.AddRange([out4, out6, child4]);
            int child = int.Parse(script.Expect("ready", Wait));

            DiscoveredSockets found = ProcessSockets.Discover(script.Pid);

            Assert.Equal([script.Pid, child], found.Pids);
            // The script's side of each connection: the peer's view reversed.
            ConnectionKey[] expected =
            [
                PeerView(in4).Reversed(), PeerView(in6).Reversed(),
                PeerView(out4).Reversed(), PeerView(out6).Reversed(), PeerView(child4).Reversed(),
            ];
            Assert.Equal(expected.Select(k => k.ToString()).Order(), found.Connections.Select(k => k.ToString()).Order());
            Assert.Equal(AddressFamily.InterNetwork, found.Connections.Single(c => c.Local.Port == 7002).AddressFamily);
            EndpointKey[] listeners =
            [
                new(new IPEndPoint(a4, 7001)), new(new IPEndPoint(IPAddress.IPv6Any, 7002)),
                new(new IPEndPoint(IPAddress.Any, 7002)), new(new IPEndPoint(a6, 7003)),
            ];
            Assert.Equal(listeners.Select(k => k.ToString()).Order(), found.Listeners.Select(k => k.ToString()).Order());
        }
        finally
        {
            foreach (Socket socket in held)
                socket.Dispose();
        }
    }

    private static ConnectionKey PeerView(Socket socket) => new((IPEndPoint)socket.LocalEndPoint!, (IPEndPoint)socket.RemoteEndPoint!);
}
