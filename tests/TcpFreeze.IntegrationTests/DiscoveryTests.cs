using System.Net;
using System.Net.Sockets;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>Discovery of real processes in namespaces of the test's own.</summary>
public class DiscoveryTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    // Listens on 7001 (IPv4), 7002 (dual-stack [::]) and 7003 (IPv6), accepts one
    // connection on 7002 and one on 7003, connects out over IPv4 and IPv6, and forks a
    // child that connects out once more. Both hold everything until stdin closes; the
    // alarm ends them even if the test forgets.
    private const string ServerScript = """
        import os, signal, socket, sys
        signal.alarm(120)
        a4, a6, b4, b6 = sys.argv[1:5]
        def listen(family, address, port):
            s = socket.socket(family, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if address == '::':
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.bind((address, port))
            s.listen(8)
            return s
        l1 = listen(socket.AF_INET, a4, 7001)
        l2 = listen(socket.AF_INET6, '::', 7002)
        l3 = listen(socket.AF_INET6, a6, 7003)
        print('listening', flush=True)
        c1, _ = l2.accept()
        c2, _ = l3.accept()
        o1 = socket.create_connection((b4, 9001), timeout=10)
        o2 = socket.create_connection((b6, 9001), timeout=10)
        r, w = os.pipe()
        child = os.fork()
        if child == 0:
            signal.alarm(120)
            o3 = socket.create_connection((b4, 9001), timeout=10)
            os.write(w, b'x')
            sys.stdin.read()
            os._exit(0)
        os.read(r, 1)
        print('ready', child, flush=True)
        sys.stdin.read()
        """;

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
    public void Finds_every_connection_and_listener_of_a_process_tree()
    {
        using TestNetwork network = TestNetwork.Create();
        IPAddress a4 = network.AddressA(AddressFamily.InterNetwork), a6 = network.AddressA(AddressFamily.InterNetworkV6);
        IPAddress b4 = network.AddressB(AddressFamily.InterNetwork), b6 = network.AddressB(AddressFamily.InterNetworkV6);
        using Socket peer4 = TcpPair.Listen(network.B, new IPEndPoint(b4, 9001));
        using Socket peer6 = TcpPair.Listen(network.B, new IPEndPoint(b6, 9001));
        using var script = ScriptProcess.Start(network.NameA, ServerScript, a4.ToString(), a6.ToString(), b4.ToString(), b6.ToString());
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
            Socket out4 = Accept(peer4), out6 = Accept(peer6), child4 = Accept(peer4);
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

    private static Socket Accept(Socket listener)
    {
        if (!listener.Poll(Wait, SelectMode.SelectRead))
            throw new TimeoutException($"no connection reached {listener.LocalEndPoint} within {Wait}");
        return listener.Accept();
    }
}
