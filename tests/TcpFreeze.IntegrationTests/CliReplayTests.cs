using System.Net;
using System.Net.Sockets;
using System.Text;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// The replay through the command (issue 21): in the serial "resume timing" collection, since it bounds how soon the
/// bytes arrive after the thaw.
/// </summary>
[Collection("resume timing")]
public sealed class CliReplayTests : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    private readonly TestNetwork _network = TestNetwork.Create();
    private readonly PinRoot _pins = new();

    private string NamespaceA => $"/run/netns/{_network.NameA}";

    private CliResult Cli(params string[] arguments) => TcpFreezeCommand.Run(["--pin-root", _pins.Path, .. arguments]);

    /// <summary>
    /// Issue 21 through the command: a client whose namespace drops every ICMP destination unreachable (no kick
    /// reaches it) writes into a 5 s freeze; `tcpfreeze thaw` replays its last dropped segment into the server's
    /// socket, so the server has the bytes as the command returns, not at the client's backed-off retransmission
    /// (about 1.2 s later after 5 s), and the command says so.
    /// </summary>
    [RootFact]
    [Trait("Privileges", "root")]
    public void Thaw_after_a_5_s_freeze_replays_the_segment_of_a_client_that_drops_ICMP_and_says_so()
    {
        Cli("attach", "--netns", NamespaceA).Succeeds();
        TestNetwork.DropIcmpUnreachable(_network.NameB);
        using TcpPair pair = TcpPair.Open(_network.B, _network.A, new IPEndPoint(_network.AddressA(AddressFamily.InterNetwork), 8081));
        TcpPair.AssertRoundTrip(pair.Client, pair.Server, "before");
        ConnectionKey key = pair.ServerView;
        string local = TcpEndpointText.Format(key.Local), remote = TcpEndpointText.Format(key.Remote);
        Assert.Contains("froze 1 connection", Cli("freeze", local, remote, "--netns", NamespaceA, "--lease", "60").Succeeds().Output);

        pair.Client.Send("held"u8);
        Thread.Sleep(TimeSpan.FromSeconds(5));
        Assert.False(pair.Server.Poll(0, SelectMode.SelectRead), "bytes crossed a frozen connection");

        string thawed = Cli("thaw", local, remote, "--netns", NamespaceA).Succeeds().Output;
        var sinceThaw = System.Diagnostics.Stopwatch.StartNew();
        Assert.Contains("thawed 1 connection", thawed);
        Assert.Contains("replayed 1 peer segment to this host's sockets", thawed);
        Assert.True(TcpPair.Readable(pair.Server, TimeSpan.FromMilliseconds(50)),
            $"the server had nothing 50 ms after the thaw returned (it waits for the client's back-off): {thawed}");
        Assert.Equal("held", Encoding.ASCII.GetString(TcpPair.ReadExactly(pair.Server, 4, Wait)));
        pair.Server.Send("back"u8);
        Assert.Equal("back", Encoding.ASCII.GetString(TcpPair.ReadExactly(pair.Client, 4, Wait)));
        Assert.True(sinceThaw.Elapsed < TimeSpan.FromMilliseconds(500), $"the exchange took {sinceThaw.Elapsed.TotalMilliseconds:F0} ms after the thaw");
    }

    public void Dispose()
    {
        try
        {
            TcpFreezer.Detach(_pins.Options(_network.A));
        }
        finally
        {
            _pins.Dispose();
            _network.Dispose();
        }
    }
}
