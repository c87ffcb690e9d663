using System.Net;
using System.Net.Sockets;
using System.Text;
using TcpFreeze.Ebpf.Interop;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// `tcpfreeze thaw --all` and `tcpfreeze detach` recover from every leftover state: each
/// test builds the state for real (a frozen TCP connection over a veth, then someone
/// else detaches the programs or removes pins), runs the built command, and checks the
/// kernel and the connection.
/// </summary>
[Trait("Privileges", "root")]
public sealed class LeftoverStateCliTests : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(700);
    private const string Held = "frozen";

    private TestNetwork? _network;
    private PinRoot? _pins;
    private readonly List<TcpPair> _pairs = [];

    private TestNetwork Network => _network ??= TestNetwork.Create();
    private PinRoot Pins => _pins ??= new PinRoot();
    private string NamespaceA => $"/run/netns/{Network.NameA}";
    private FreezerOptions OptionsA => Pins.Options(Network.A);
    private string PinDirectory => TcpFreezer.GetPinDirectory(OptionsA);

    private CliResult Cli(params string[] arguments) => TcpFreezeCommand.Run(["--pin-root", Pins.Path, .. arguments, "--netns", NamespaceA]);

    [RootFact]
    public void Pins_whose_programs_someone_else_detached_thaw_detach_and_attach_again()
    {
        TcpPair pair = AttachAndFreezeAConnection(8101);
        DetachProgramsBehindTcpFreezesBack();
        Assert.Equal(KernelObjects.PinNames.Length, Directory.GetFiles(PinDirectory).Length);

        CliResult thaw = Cli("thaw", "--all");
        Assert.True(thaw.ExitCode == 0, thaw.ToString());
        Assert.Contains("thawed 1 connection", thaw.Output);
        string warning = OneWarningLine(thaw);
        Assert.Contains("not attached", warning);
        Assert.Contains("'tcpfreeze attach'", warning);
        Assert.Contains("'tcpfreeze detach'", warning);
        using (TcpFreezer check = TcpFreezer.Open(OptionsA))
            Assert.Empty(check.ListConnections());
        AssertFlowsAgain(pair);

        string detached = Cli("detach").Succeeds().Output;
        Assert.Contains($"detached from no interface; removed {KernelObjects.PinNames.Length} pins", detached);
        Assert.False(Directory.Exists(PinDirectory), "the pin directory is still there");
        KernelState.AssertNothingLeft(Network.A, OptionsA);

        // A later attach starts afresh, and a freeze holds again.
        TcpPair again = AttachAndFreezeAConnection(8102);
        Assert.Contains("thawed 1 connection", Cli("thaw", "--all").Succeeds().Output);
        AssertFlowsAgain(again);
    }

    [RootFact]
    public void Attached_programs_whose_pins_were_removed_thaw_through_their_maps_and_detach_removes_them()
    {
        TcpPair pair = AttachAndFreezeAConnection(8103);
        RemovePins(KernelObjects.PinNames);
        Directory.Delete(PinDirectory);
        Assert.Contains("xdp", KernelLinks(TestNetwork.Interface));
        Assert.Contains("tf_tc_egress", KernelEgressFilters(TestNetwork.Interface));
        pair.Client.Send("still"u8);
        Assert.False(TcpPair.Readable(pair.Server, Quiet), "the programs stopped holding the connection when their pins went");

        CliResult thaw = Cli("thaw", "--all");
        Assert.True(thaw.ExitCode == 0, thaw.ToString());
        Assert.Contains("thawed 1 connection", thaw.Output);
        string warning = OneWarningLine(thaw);
        Assert.Contains("were missing", warning);
        Assert.Contains("attached to lo, veth0", warning);
        Assert.Contains("'tcpfreeze detach'", warning);
        AssertFlowsAgain(pair, Held + "still");

        string detached = Cli("detach").Succeeds().Output;
        Assert.Contains("detached from lo, veth0; removed 0 pins", detached);
        Assert.DoesNotContain("xdp", KernelLinks(TestNetwork.Interface));
        Assert.Empty(KernelEgressFilters(TestNetwork.Interface));
        Assert.Empty(KernelEgressFilters("lo"));
        KernelState.AssertNothingLeft(Network.A, OptionsA);
        Assert.Contains("nothing was attached", Cli("detach").Succeeds().Output);
    }

    [RootFact]
    public void Map_pins_without_program_pins_or_programs_thaw_and_detach_removes_them()
    {
        TcpPair pair = AttachAndFreezeAConnection(8104);
        RemovePins([KernelObjects.XdpIngress.PinName, KernelObjects.TcEgress.PinName, KernelObjects.TcIngress.PinName, KernelObjects.L3Ingress.PinName, KernelObjects.L3Egress.PinName]);
        DetachProgramsBehindTcpFreezesBack();

        ThawAllWarns("not attached");
        AssertFlowsAgain(pair);

        DetachLeavesNothing("removed 6 pins"); // the six map pins
    }

    [RootFact]
    public void Attached_programs_with_program_pins_but_no_map_pins_thaw_through_their_maps()
    {
        TcpPair pair = AttachAndFreezeAConnection(8105);
        RemovePins([KernelObjects.Connections.PinName, KernelObjects.Endpoints.PinName, KernelObjects.Counters.PinName, KernelObjects.Config.PinName, KernelObjects.Replay.PinName, KernelObjects.LocalReplay.PinName]);
        Cli("list").FailsWith(1, "no pins");

        ThawAllWarns("the pins of the connections, endpoints, counters, config");
        AssertFlowsAgain(pair);

        DetachLeavesNothing("detached from lo, veth0; removed 5 pins");
    }

    [RootFact]
    public void Program_pins_alone_still_reach_the_frozen_set_and_detach_removes_them()
    {
        AttachAndFreezeAConnection(8106);
        RemovePins([KernelObjects.Connections.PinName, KernelObjects.Endpoints.PinName, KernelObjects.Counters.PinName, KernelObjects.Config.PinName, KernelObjects.Replay.PinName, KernelObjects.LocalReplay.PinName]);
        DetachProgramsBehindTcpFreezesBack();

        // The pinned programs keep their maps alive, entries included: the thaw empties them.
        ThawAllWarns("through the pinned TcpFreeze programs");

        DetachLeavesNothing("detached from no interface; removed 5 pins");
    }

    [RootFact]
    public void A_lone_map_pin_is_a_one_line_error_for_thaw_and_detach_removes_it()
    {
        AttachAndFreezeAConnection(8107);
        RemovePins([KernelObjects.Endpoints.PinName, KernelObjects.Counters.PinName, KernelObjects.Config.PinName, KernelObjects.Replay.PinName, KernelObjects.LocalReplay.PinName, KernelObjects.XdpIngress.PinName, KernelObjects.TcEgress.PinName, KernelObjects.TcIngress.PinName, KernelObjects.L3Ingress.PinName, KernelObjects.L3Egress.PinName]);
        DetachProgramsBehindTcpFreezesBack();

        Cli("thaw", "--all").FailsWith(1, "the 'endpoints' map is neither pinned");
        Assert.Equal([KernelObjects.Connections.PinName], Directory.GetFiles(PinDirectory).Select(Path.GetFileName));

        DetachLeavesNothing("removed 1 pin");
    }

    [RootFact]
    public void An_empty_pin_directory_is_nothing_to_thaw_and_detach_removes_it()
    {
        Directory.CreateDirectory(PinDirectory);

        string thawed = Cli("thaw", "--all").Succeeds().Output;
        Assert.Contains("nothing is frozen", thawed);
        Assert.Contains("'tcpfreeze detach' removes the directory", thawed);

        DetachLeavesNothing("removed the empty pin directory");
    }

    [RootFact]
    public void With_nothing_left_thaw_all_and_detach_say_there_is_nothing_to_do_and_create_nothing()
    {
        Assert.Contains("nothing is attached", Cli("thaw", "--all").Succeeds().Output);
        Assert.Contains("nothing was attached", Cli("detach").Succeeds().Output);
        Assert.Empty(Directory.EnumerateFileSystemEntries(Pins.Path));
        KernelState.AssertNothingLeft(Network.A, OptionsA);
    }

    // ------------------------------------------------------------------ building the states

    /// <summary>Attaches with the command, opens a connection B -> A and freezes it (A's view); proves it holds.</summary>
    private TcpPair AttachAndFreezeAConnection(int port)
    {
        Assert.Contains("attached veth0", Cli("attach").Succeeds().Output);
        TcpPair pair = TcpPair.Open(Network.B, Network.A, new IPEndPoint(Network.AddressA(AddressFamily.InterNetwork), port));
        _pairs.Add(pair);
        ConnectionKey key = pair.ServerView;
        Assert.Contains("froze 1 connection", Cli("freeze", TcpEndpointText.Format(key.Local), TcpEndpointText.Format(key.Remote)).Succeeds().Output);
        pair.Client.Send(Encoding.ASCII.GetBytes(Held));
        Assert.False(TcpPair.Readable(pair.Server, Quiet), "bytes crossed a frozen connection");
        return pair;
    }

    /// <summary>What another administrator would run: ip and tc, not TcpFreeze.</summary>
    private void DetachProgramsBehindTcpFreezesBack()
    {
        foreach (string device in new[] { TestNetwork.Interface, "lo" })
        {
            Run.Checked("ip", "-n", Network.NameA, "link", "set", "dev", device, "xdp", "off");
            Run.Checked("tc", "-n", Network.NameA, "filter", "del", "dev", device, "egress");
        }
        // Loopback's ingress program is a TC filter (it must see CRIU's mark), not XDP.
        Run.Checked("tc", "-n", Network.NameA, "filter", "del", "dev", "lo", "ingress");
        Assert.False(TcpFreezer.Inspect(OptionsA).ProgramsAttached, "ip and tc left a TcpFreeze program attached");
    }

    /// <summary>`thaw --all` succeeds, thaws the one frozen connection and warns (one line) about <paramref name="warning"/>.</summary>
    private void ThawAllWarns(string warning)
    {
        CliResult thaw = Cli("thaw", "--all");
        Assert.True(thaw.ExitCode == 0, thaw.ToString());
        Assert.Contains("thawed 1 connection", thaw.Output);
        Assert.Contains(warning, OneWarningLine(thaw));
    }

    /// <summary>`detach` says <paramref name="said"/> and leaves no pin directory, program or filter.</summary>
    private void DetachLeavesNothing(string said)
    {
        Assert.Contains(said, Cli("detach").Succeeds().Output);
        Assert.False(Directory.Exists(PinDirectory), "the pin directory is still there");
        KernelState.AssertNothingLeft(Network.A, OptionsA);
    }

    private void RemovePins(IEnumerable<string> pins)
    {
        foreach (string pin in pins)
            File.Delete(Path.Combine(PinDirectory, pin));
    }

    private static void AssertFlowsAgain(TcpPair pair, string expected = Held)
    {
        Assert.Equal(expected, Encoding.ASCII.GetString(TcpPair.ReadExactly(pair.Server, expected.Length, Wait)));
        TcpPair.AssertRoundTrip(pair.Server, pair.Client, "and back");
        Assert.Equal(TcpPair.Established, TcpPair.TcpState(pair.Client));
    }

    private static string OneWarningLine(CliResult result)
    {
        string[] lines = result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one warning line: {result}");
        Assert.StartsWith("tcpfreeze: warning: ", lines[0]);
        return lines[0];
    }

    private string KernelLinks(string device) => Run.Checked("ip", "-n", Network.NameA, "-d", "link", "show", "dev", device);

    private string KernelEgressFilters(string device) => Run.Checked("tc", "-n", Network.NameA, "filter", "show", "dev", device, "egress").Trim();

    public void Dispose()
    {
        try
        {
            foreach (TcpPair pair in _pairs)
                pair.Dispose();
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
