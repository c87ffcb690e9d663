using System.Net;
using System.Net.Sockets;
using System.Text;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// What the boot-time unit runs (scripts/install.sh: `tcpfreeze --hook-settings FILE attach`, and at stop
/// `... detach --if-idle`), and `freeze --endpoint [::]:PORT` against a dual-stack listener, in namespaces
/// and a pin root of the test's own (names tfin + the process id).
/// </summary>
public sealed class CliServiceStopTests : IDisposable
{
    private const string Tag = "tfin";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(700);

    private TestNetwork? _network;
    private PinRoot? _pins;
    private readonly TempDirectory _folder = new();

    private TestNetwork Network => _network ??= TestNetwork.Create(Tag);
    private PinRoot Pins => _pins ??= new PinRoot(Tag);
    private string NamespaceA => $"/run/netns/{Network.NameA}";

    /// <summary>The hook's settings file, naming the test's pin root: the unit's commands give no --pin-root, only this file.</summary>
    private string HookSettingsFile => File.Exists(_folder.File("criu-hook.conf"))
        ? _folder.File("criu-hook.conf")
        : _folder.Write("criu-hook.conf", $"pin-root = {Pins.Path}\nkeep-attached = true\n");

    private CliResult UnitCommand(params string[] arguments) => TcpFreezeCommand.Run(["--hook-settings", HookSettingsFile, .. arguments]);

    private string[] PinFiles() => Directory.GetFiles(Pins.Path, "*", SearchOption.AllDirectories);

    [RootFact]
    [Trait("Privileges", "root")]
    public void A_service_stop_while_a_connection_is_frozen_keeps_it_frozen_says_until_when_and_detaches_once_idle()
    {
        // ExecStart: the pins land in the hook's pin root, not the default one.
        Assert.Contains("attached veth0", UnitCommand("attach", "--netns", NamespaceA).Succeeds().Output);
        Assert.NotEmpty(PinFiles());
        using TcpPair pair = TcpPair.Open(Network.B, Network.A, new IPEndPoint(Network.AddressA(AddressFamily.InterNetwork), 8080));
        using (TcpFreezer freezer = TcpFreezer.Open(Pins.Options(Network.A)))
            freezer.Freeze([pair.ServerView], [], TimeSpan.FromSeconds(60));

        // ExecStop during a migration: exit 0, nothing thawed or detached, and it says why and until when.
        string kept = UnitCommand("detach", "--if-idle", "--netns", NamespaceA).Succeeds().Output;
        Assert.Contains("kept everything attached: 1 connection and 0 listening endpoints are frozen", kept);
        Assert.Contains("until their leases end, at most ", kept);
        Assert.Contains("nothing was detached", kept);
        Assert.NotEmpty(PinFiles());
        pair.Client.Send("held"u8);
        Assert.False(TcpPair.Readable(pair.Server, Quiet), "bytes crossed the connection after the service stop: it was thawed");

        // Once the restore side thawed it, the same stop detaches.
        using (TcpFreezer freezer = TcpFreezer.Open(Pins.Options(Network.A)))
            freezer.Thaw([pair.ServerView], []);
        Assert.Equal("held", Encoding.ASCII.GetString(TcpPair.ReadExactly(pair.Server, 4, Wait)));
        string detached = UnitCommand("detach", "--if-idle", "--netns", NamespaceA).Succeeds().Output;
        Assert.Contains("nothing was frozen; detached from ", detached);
        Assert.Contains("veth0", detached);
        Assert.Empty(PinFiles());
        Assert.Contains("nothing was attached", UnitCommand("detach", "--if-idle", "--netns", NamespaceA).Succeeds().Output);
    }

    [RootFact]
    [Trait("Privileges", "root")]
    public void A_service_stop_keeps_a_frozen_endpoint_without_a_lease_and_says_so()
    {
        UnitCommand("attach", "--netns", NamespaceA).Succeeds();
        UnitCommand("freeze", "--netns", NamespaceA, "--endpoint", $"{Network.AddressA(AddressFamily.InterNetwork)}:8081", "--lease", "none").Succeeds();
        string kept = UnitCommand("detach", "--if-idle", "--netns", NamespaceA).Succeeds().Output;
        Assert.Contains("0 connections and 1 listening endpoint are frozen", kept);
        Assert.Contains("some without a lease", kept);
        Assert.NotEmpty(PinFiles());
    }

    [RootFact]
    [Trait("Privileges", "root")]
    public void Freezing_the_any_address_endpoint_of_a_dual_stack_listener_holds_ipv4_and_ipv6_clients_alike()
    {
        const int port = 9443;
        UnitCommand("attach", "--netns", NamespaceA).Succeeds();
        using Socket listener = Network.A.Run(() =>
        {
            var socket = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp) { DualMode = true };
            socket.Bind(new IPEndPoint(IPAddress.IPv6Any, port));
            socket.Listen(16);
            return socket;
        });
        UnitCommand("freeze", "--netns", NamespaceA, "--endpoint", $"[::]:{port}", "--lease", "60").Succeeds();

        // Connect attempts while frozen: no SYN may reach the listener, whatever the client's family.
        using Socket v4 = TcpPair.NewClient(Network.B, AddressFamily.InterNetwork);
        using Socket v6 = TcpPair.NewClient(Network.B, AddressFamily.InterNetworkV6);
        Task connect4 = v4.ConnectAsync(new IPEndPoint(Network.AddressA(AddressFamily.InterNetwork), port));
        Task connect6 = v6.ConnectAsync(new IPEndPoint(Network.AddressA(AddressFamily.InterNetworkV6), port));
        Assert.False(listener.Poll(Quiet * 2, SelectMode.SelectRead), "a client connected to the frozen [::] endpoint");
        Assert.False(connect4.IsCompleted, "the IPv4 client got an answer from the frozen [::] endpoint");
        Assert.False(connect6.IsCompleted, "the IPv6 client got an answer from the frozen [::] endpoint");

        // Thawing [::] lets both in (their SYN retransmissions get through).
        UnitCommand("thaw", "--netns", NamespaceA, "--endpoint", $"[::]:{port}").Succeeds();
        Assert.True(connect4.Wait(Wait), "the IPv4 client did not connect after the thaw");
        Assert.True(connect6.Wait(Wait), "the IPv6 client did not connect after the thaw");
    }

    public void Dispose()
    {
        try
        {
            if (_network is not null && _pins is not null)
                TcpFreezer.Detach(_pins.Options(_network.A));
        }
        finally
        {
            _pins?.Dispose();
            _network?.Dispose();
            _folder.Dispose();
        }
    }
}
