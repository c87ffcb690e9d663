using System.Net;
using System.Net.Sockets;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// What TCP does through a long freeze while the frozen side keeps writing. The egress program
/// must make the local stack treat its dropped segments as sent (so it backs off normally),
/// not as dropped by its own host (retried every 500 ms and aborted after tcp_retries2 tries,
/// about 7.5 s into the freeze).
/// </summary>
[Trait("Privileges", "root")]
public sealed class LongFreezeTests
{
    [RootTheory]
    [InlineData(IngressHook.Xdp, 10)]
    [InlineData(IngressHook.Tc, 10)]
    [InlineData(IngressHook.Xdp, 30)]
    [InlineData(IngressHook.Tc, 30)]
    public void Sockets_that_write_through_a_long_freeze_stay_established_and_deliver_every_byte_once_in_order(IngressHook hook, int seconds)
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B) with { IngressHook = hook };
        var pairs = new List<TcpPair>();
        var streams = new List<PatternStream>();
        TimeSpan freeze = TimeSpan.FromSeconds(seconds), writeFor = freeze + TimeSpan.FromSeconds(3);
        try
        {
            using var freezer = TcpFreezer.Attach(options);
            int port = 8100;
            foreach (AddressFamily family in new[] { AddressFamily.InterNetwork, AddressFamily.InterNetworkV6 })
            {
                string f = family == AddressFamily.InterNetwork ? "IPv4" : "IPv6";
                TcpPair Open() { var p = TcpPair.Open(network.A, network.B, new IPEndPoint(network.AddressB(family), port++)); pairs.Add(p); return p; }
                // A one-way stream from the frozen side (the server, in B).
                TcpPair stream = Open();
                streams.Add(new PatternStream($"{f} one-way stream", stream.Server, stream.Client, 4096, TimeSpan.FromMilliseconds(20), writeFor));
                // A heartbeat: one small write a second.
                TcpPair heartbeat = Open();
                streams.Add(new PatternStream($"{f} heartbeat", heartbeat.Server, heartbeat.Client, 16, TimeSpan.FromSeconds(1), writeFor));
                // Full windows both ways: both write, neither reads during the freeze.
                TcpPair full = Open();
                streams.Add(new PatternStream($"{f} full windows, server to client", full.Server, full.Client, 65536, TimeSpan.FromMilliseconds(10), writeFor));
                streams.Add(new PatternStream($"{f} full windows, client to server", full.Client, full.Server, 65536, TimeSpan.FromMilliseconds(10), writeFor));
            }
            PatternStream[] held = streams.Where(s => s.Name.Contains("full windows")).ToArray();
            foreach (PatternStream s in streams)
                s.Start();
            Thread.Sleep(300);

            freezer.Freeze(pairs.Select(p => p.ServerView), lease: Lease.Forever); // longer than the default lease
            foreach (PatternStream s in held)
                s.HoldReader();
            Thread.Sleep(freeze);
            Assert.All(freezer.ListConnections(), c => Assert.True(c.DroppedPackets > 0, $"{c.Key} dropped nothing while frozen"));
            foreach (TcpPair p in pairs)
                FreezeTests.AssertHealthy(p);   // ESTABLISHED and no pending error on either side, after the whole freeze
            Assert.Equal(pairs.Count, freezer.Thaw(pairs.Select(p => p.ServerView)).ConnectionsThawed);

            foreach (PatternStream s in streams)
                s.AssertComplete(TimeSpan.FromSeconds(30));
            foreach (TcpPair p in pairs)
                FreezeTests.AssertHealthy(p);
        }
        finally
        {
            TcpFreezer.Detach(options);
            foreach (TcpPair p in pairs)
                p.Dispose();
        }
    }
}
