using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>The command against the kernel, in namespaces and pin roots of the test's own.</summary>
public sealed class CliTests : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(700);

    // Connects to the test's listener in the other namespace and echoes what it reads
    // until the peer closes; the alarm ends it even if the test forgets.
    private const string EchoScript = """
        import signal, socket, sys
        signal.alarm(120)
        s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60)
        print('connected', flush=True)
        while True:
            data = s.recv(4096)
            if not data:
                break
            s.sendall(data)
        """;

    private TestNetwork? _network;
    private PinRoot? _pins;

    private TestNetwork Network => _network ??= TestNetwork.Create();
    private PinRoot Pins => _pins ??= new PinRoot();
    private string NamespaceA => $"/run/netns/{Network.NameA}";

    private CliResult Cli(params string[] arguments) => TcpFreezeCommand.Run(["--pin-root", Pins.Path, .. arguments]);

    [RootFact]
    [Trait("Privileges", "root")]
    public void List_shows_a_connection_frozen_by_the_library_and_thaw_lets_its_bytes_through()
    {
        Assert.Contains("attached veth0", Cli("attach", "--netns", NamespaceA).Succeeds().Output);
        using TcpPair pair = TcpPair.Open(Network.B, Network.A, new IPEndPoint(Network.AddressA(AddressFamily.InterNetwork), 8080));
        ConnectionKey key = pair.ServerView;
        using (TcpFreezer freezer = TcpFreezer.Open(Pins.Options(Network.A)))
            freezer.Freeze([key], lease: Lease.Forever); // no lease: the listing says null

        pair.Client.Send("frozen"u8);
        Assert.False(TcpPair.Readable(pair.Server, Quiet), "bytes crossed a frozen connection");

        JsonElement listed = Cli("list", "--json", "--netns", NamespaceA).Succeeds().Json();
        JsonElement connection = Assert.Single(listed.GetProperty("connections").EnumerateArray());
        Assert.Equal(TcpEndpointText.Format(key.Local), connection.GetProperty("local").GetString());
        Assert.Equal(TcpEndpointText.Format(key.Remote), connection.GetProperty("remote").GetString());
        Assert.True(connection.GetProperty("dropped").GetUInt64() > 0, "the held segment was not counted as dropped");
        Assert.Equal(JsonValueKind.Null, connection.GetProperty("leaseSeconds").ValueKind);
        Assert.Empty(listed.GetProperty("endpoints").EnumerateArray());
        JsonElement stats = Cli("stats", "--json", "--netns", NamespaceA).Succeeds().Json();
        Assert.Equal(1, stats.GetProperty("frozenConnections").GetInt32());
        Assert.True(stats.GetProperty("dropped").GetProperty("receive").GetUInt64() > 0);

        string thawed = Cli("thaw", TcpEndpointText.Format(key.Local), TcpEndpointText.Format(key.Remote), "--netns", NamespaceA).Succeeds().Output;
        Assert.Contains("thawed 1 connection", thawed);
        Assert.Equal("frozen", Encoding.ASCII.GetString(TcpPair.ReadExactly(pair.Server, 6, Wait)));
        TcpPair.AssertRoundTrip(pair.Server, pair.Client, "and back");

        string again = Cli("thaw", TcpEndpointText.Format(key.Local), TcpEndpointText.Format(key.Remote), "--netns", NamespaceA).Succeeds().Output;
        Assert.Contains($"not frozen: connection {key}", again);
        Assert.Contains("nothing is frozen", Cli("list", "--netns", NamespaceA).Succeeds().Output);
    }

    [RootFact]
    [Trait("Privileges", "root")]
    public void Freeze_pid_holds_a_process_connection_and_thaw_pid_releases_it()
    {
        Cli("attach", "--netns", NamespaceA).Succeeds();
        IPAddress b = Network.AddressB(AddressFamily.InterNetworkV6);
        using Socket listener = TcpPair.Listen(Network.B, new IPEndPoint(b, 9002));
        using var echo = ScriptProcess.Start(Network.NameA, EchoScript, b.ToString(), "9002");
        echo.Expect("connected", Wait);
        Assert.True(listener.Poll(Wait, SelectMode.SelectRead), "the script did not connect");
        using Socket peer = listener.Accept();
        TcpPair.AssertRoundTrip(peer, peer, "ping");
        var key = new ConnectionKey((IPEndPoint)peer.RemoteEndPoint!, (IPEndPoint)peer.LocalEndPoint!); // the script's view

        string frozen = Cli("freeze", "--pid", echo.Pid.ToString(), "--lease", "120").Succeeds().Output;
        Assert.Contains($"process {echo.Pid} holds 1 connection and 0 listening endpoints", frozen);
        Assert.Contains("froze 1 connection", frozen);
        JsonElement listed = Cli("list", "--json", "--netns", NamespaceA).Succeeds().Json();
        JsonElement connection = Assert.Single(listed.GetProperty("connections").EnumerateArray());
        Assert.Equal(TcpEndpointText.Format(key.Local), connection.GetProperty("local").GetString());
        Assert.InRange(connection.GetProperty("leaseSeconds").GetDouble(), 60, 120);

        peer.Send("held"u8);
        Assert.False(TcpPair.Readable(peer, Quiet), "the frozen process echoed");

        Assert.Contains("thawed 1 connection", Cli("thaw", "--pid", echo.Pid.ToString()).Succeeds().Output);
        Assert.Equal("held", Encoding.ASCII.GetString(TcpPair.ReadExactly(peer, 4, Wait)));
        Assert.Contains("nothing is frozen", Cli("list", "--netns", NamespaceA).Succeeds().Output);
    }

    [RootFact]
    [Trait("Privileges", "root")]
    public void Detach_leaves_no_xdp_program_no_tc_filter_and_no_pin()
    {
        Cli("attach", "--netns", NamespaceA).Succeeds();
        Cli("freeze", "--netns", NamespaceA, "--endpoint", "198.18.0.1:80", "--endpoint", "[::]:443").Succeeds();
        // The checks below can see what attach did, so their silence after detach means something.
        Assert.Contains("xdp", KernelLinks());
        Assert.NotEmpty(KernelEgressFilters(TestNetwork.Interface));
        Assert.NotEmpty(PinFiles());

        string detached = Cli("detach", "--netns", NamespaceA).Succeeds().Output;
        Assert.Contains("veth0", detached);

        Assert.DoesNotContain("xdp", KernelLinks());
        Assert.Empty(KernelEgressFilters(TestNetwork.Interface));
        Assert.Empty(KernelEgressFilters("lo"));
        Assert.Empty(PinFiles());
        Assert.Contains("nothing was attached", Cli("detach", "--netns", NamespaceA).Succeeds().Output);
    }

    [RootFact]
    [Trait("Privileges", "root")]
    public void Attach_with_tc_ingress_beside_a_foreign_xdp_program_then_detach_leaves_only_that_program()
    {
        using ForeignXdpProgram foreign = ForeignXdpProgram.Pass();
        foreign.AttachTo(Network.A, TestNetwork.Interface);
        Cli("attach", "--netns", NamespaceA).FailsWith(1, "refusing to replace");

        string attached = Cli("attach", "--netns", NamespaceA, "--ingress", "tc").Succeeds().Output;
        Assert.Contains("attached veth0 (TC ingress, TC egress)", attached);
        Assert.Contains("tf_tc_ingress", KernelFilters(TestNetwork.Interface, "ingress"));
        Assert.Contains("tf_tc_ingress", KernelFilters("lo", "ingress"));
        Assert.NotEmpty(KernelFilters(TestNetwork.Interface, "egress"));
        Assert.Equal(foreign.Id, ForeignXdpProgram.AttachedId(Network.A, TestNetwork.Interface));
        Assert.Equal(0u, ForeignXdpProgram.AttachedId(Network.A, "lo"));
        Assert.NotEmpty(PinFiles());

        Assert.Contains("veth0", Cli("detach", "--netns", NamespaceA).Succeeds().Output);
        foreach (string device in new[] { TestNetwork.Interface, "lo" })
        {
            Assert.Empty(KernelFilters(device, "ingress"));
            Assert.Empty(KernelFilters(device, "egress"));
        }
        Assert.Empty(PinFiles());
        Assert.Equal(foreign.Id, ForeignXdpProgram.AttachedId(Network.A, TestNetwork.Interface));
    }

    [RootFact]
    [Trait("Privileges", "root")]
    public void Attach_to_an_unknown_device_fails_cleanly_and_leaves_no_pins()
    {
        Cli("attach", "--netns", NamespaceA, "--dev", "veth0", "--dev", "nosuch0").FailsWith(1, "there is no interface 'nosuch0'");
        Assert.Empty(PinFiles());
        Assert.Empty(Directory.EnumerateFileSystemEntries(Pins.Path));
        Assert.DoesNotContain("xdp", KernelLinks());
        Assert.Empty(KernelEgressFilters(TestNetwork.Interface));
    }

    private string KernelLinks() => Run.Checked("ip", "-n", Network.NameA, "-d", "link", "show");

    private string KernelEgressFilters(string device) => KernelFilters(device, "egress");

    private string KernelFilters(string device, string direction) => Run.Checked("tc", "-n", Network.NameA, "filter", "show", "dev", device, direction).Trim();

    private string[] PinFiles() => Directory.GetFiles(Pins.Path, "*", SearchOption.AllDirectories);

    public void Dispose()
    {
        // Detach through the library whatever the test did, then remove pins and namespaces.
        try
        {
            if (_network is not null && _pins is not null)
                TcpFreezer.Detach(_pins.Options(_network.A));
        }
        finally
        {
            _pins?.Dispose();
            _network?.Dispose();
        }
    }
}
