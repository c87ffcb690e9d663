using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>sock_diag, the /proc text tables and the sockets' own descriptors describe real processes alike.</summary>
public class DiscoverySockDiagTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    [RootFact]
    [Trait("Privileges", "root")]
    public void Sock_diag_and_the_text_tables_find_the_same_sockets_from_inside_and_outside_the_namespace()
    {
        using TestNetwork network = TestNetwork.Create();
        IPAddress a4 = network.AddressA(AddressFamily.InterNetwork), a6 = network.AddressA(AddressFamily.InterNetworkV6);
        IPAddress b4 = network.AddressB(AddressFamily.InterNetwork), b6 = network.AddressB(AddressFamily.InterNetworkV6);
        using Socket peer4 = TcpPair.Listen(network.B, new IPEndPoint(b4, 9101));
        using Socket peer6 = TcpPair.Listen(network.B, new IPEndPoint(b6, 9101));
        // A socket in the script's namespace that the script does not hold: neither source may report it.
        using Socket stranger = TcpPair.Listen(network.A, new IPEndPoint(a4, 7199));
        // The script tree listens on 7101-7103 and accepts on each; the test closes its end of the 7101 one (CLOSE_WAIT
        // there). It connects out to 9101 (twice, and once from its child) and half-closes the IPv6 one (FIN_WAIT2 there).
        using var script = SocketTreeScript.Start(network, basePort: 7100, peerPort: 9101, accepting: "123", halfCloseIpv6: true);
        var held = new List<Socket>();
        try
        {
            script.Expect("listening", Wait);
            foreach ((AddressFamily family, IPEndPoint target) in new[]
                     {
                         (AddressFamily.InterNetwork, new IPEndPoint(a4, 7101)),
                         (AddressFamily.InterNetwork, new IPEndPoint(a4, 7102)), // IPv4-mapped on the script's side
                         (AddressFamily.InterNetworkV6, new IPEndPoint(a6, 7103)),
                     })
            {
                Socket client = TcpPair.NewClient(network.B, family);
                held.Add(client);
                client.Connect(target);
            }
            held[0].Shutdown(SocketShutdown.Send); // the script's end of 7101 goes to CLOSE_WAIT
            Socket out4 = TcpPair.Accept(peer4, Wait), out6 = TcpPair.Accept(peer6, Wait), child4 = TcpPair.Accept(peer4, Wait);
            held.AddRange([out4, out6, child4]);
            int child = int.Parse(script.Expect("ready", Wait));
            out6.ReceiveTimeout = (int)Wait.TotalMilliseconds;
            Assert.Equal(0, out6.Receive(new byte[1])); // the script's FIN arrived: its end is in FIN_WAIT2

            DiscoveredSockets text = ProcessSockets.Discover(script.Pid, "/proc", SocketTableSource.ProcText);
            DiscoveredSockets outside = ProcessSockets.Discover(script.Pid, "/proc", SocketTableSource.SockDiag);
            DiscoveredSockets inside = network.A.Run(() => ProcessSockets.Discover(script.Pid, "/proc", SocketTableSource.SockDiag));
            DiscoveredSockets automatic = ProcessSockets.Discover(script.Pid);
            // Each socket from a descriptor holding it, from outside the namespace and inside (no table walk).
            DiscoveredSockets descriptors = ProcessSockets.Discover(script.Pid, "/proc", SocketTableSource.Descriptors);
            DiscoveredSockets descriptorsInside = network.A.Run(() => ProcessSockets.Discover(script.Pid, "/proc", SocketTableSource.Descriptors));
            // Read in the kernel by the BPF socket iterator, from outside the namespace and inside.
            DiscoveredSockets iterator = ProcessSockets.Discover(script.Pid, "/proc", SocketTableSource.Iterator);
            DiscoveredSockets iteratorInside = network.A.Run(() => ProcessSockets.Discover(script.Pid, "/proc", SocketTableSource.Iterator));

            Assert.Equal([script.Pid, child], text.Pids);
            Assert.Equal(6, text.Connections.Count);
            Assert.Equal(4, text.Listeners.Count); // 7101, [::]:7102 and 0.0.0.0:7102, 7103
            Assert.DoesNotContain(text.Listeners, l => l.Endpoint.Port == 7199);
            foreach (DiscoveredSockets found in new[] { outside, inside, automatic, descriptors, descriptorsInside, iterator, iteratorInside })
            {
                Assert.Equal(text.RootPid, found.RootPid);
                Assert.Equal(text.Pids, found.Pids);
                Assert.Equal(Sorted(text.Connections), Sorted(found.Connections));
                Assert.Equal(Sorted(text.Listeners), Sorted(found.Listeners));
            }
        }
        finally
        {
            foreach (Socket socket in held)
                socket.Dispose();
        }
    }

    [Fact]
    public void Sock_diag_finds_a_loopback_connection_of_this_process_as_the_text_tables_do()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client.Connect(listener.LocalEndPoint!);
        using Socket server = listener.Accept();
        int port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        // Other tests may open sockets in this process meanwhile: compare only this pair's.
        string[] Mine(DiscoveredSockets found) => Sorted(found.Connections.Where(c => c.Local.Port == port || c.Remote.Port == port))
            .Concat(Sorted(found.Listeners.Where(l => l.Endpoint.Port == port))).ToArray();

        string[] text = Mine(ProcessSockets.Discover(Environment.ProcessId, "/proc", SocketTableSource.ProcText));
        string[] sockDiag = Mine(ProcessSockets.Discover(Environment.ProcessId, "/proc", SocketTableSource.SockDiag));

        Assert.Equal(3, text.Length); // both ends of the connection, and the listener
        Assert.Equal(text, sockDiag);
    }

    [RootFact]
    [Trait("Privileges", "root")]
    public void The_socket_iterator_reports_only_sockets_of_the_root_process_namespace_and_is_chosen_for_a_large_tree()
    {
        Assert.True(ProcessSockets.PrepareFastDiscovery(out string? reason), reason);
        using TestNetwork network = TestNetwork.Create();
        // Held by this process but in namespace B: discovery describes the root process's namespace (this host's).
        using Socket elsewhere = TcpPair.Listen(network.B, new IPEndPoint(network.AddressB(AddressFamily.InterNetwork), 9301));
        using var listener = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp) { DualMode = true };
        listener.Bind(new IPEndPoint(IPAddress.IPv6Loopback, 0));
        listener.Listen(400);
        int port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        var held = new List<Socket>();
        try
        {
            // More descriptors than SocketIterator.WorthLoadingAbove: the automatic choice is the iterator.
            for (int i = 0; i < 150; i++)
            {
                var client = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp);
                held.Add(client);
                client.Connect(new IPEndPoint(IPAddress.IPv6Loopback, port));
                held.Add(listener.Accept());
            }
            string[] Mine(DiscoveredSockets found) => Sorted(found.Connections.Where(c => c.Local.Port == port || c.Remote.Port == port))
                .Concat(Sorted(found.Listeners.Where(l => l.Endpoint.Port is var p && (p == port || p == 9301)))).ToArray();

            string[] sockDiag = Mine(ProcessSockets.Discover(Environment.ProcessId, "/proc", SocketTableSource.SockDiag));
            string[] iterator = Mine(ProcessSockets.Discover(Environment.ProcessId, "/proc", SocketTableSource.Iterator));
            Assert.True(DescriptorScan.CountDescriptors("/proc", Environment.ProcessId) > SocketIterator.WorthLoadingAbove);
            string[] automatic = Mine(ProcessSockets.Discover(Environment.ProcessId));

            Assert.Equal(300 + 1, sockDiag.Length); // both ends of 150 connections, and the listener; not B's listener
            Assert.DoesNotContain(sockDiag, k => k.Contains(":9301", StringComparison.Ordinal));
            Assert.Equal(sockDiag, iterator);
            Assert.Equal(sockDiag, automatic);
        }
        finally
        {
            foreach (Socket socket in held)
                socket.Dispose();
        }
    }

    [Fact]
    public void Sock_diag_refuses_a_fake_proc_tree()
    {
        Assert.Throws<ArgumentException>(() => ProcessSockets.Discover(Environment.ProcessId, "/tmp", SocketTableSource.SockDiag));
    }

    private static string[] Sorted<T>(IEnumerable<T> keys) => keys.Select(k => k!.ToString()!).Order(StringComparer.Ordinal).ToArray();
}
