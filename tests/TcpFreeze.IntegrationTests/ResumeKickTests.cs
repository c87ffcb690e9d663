using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using TcpFreeze.Ebpf.Interop;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// The resume kick: after a thaw, connections whose senders backed off while frozen talk again
/// at once, in both directions and both families, instead of after their next retransmission
/// (which comes up to about as long after the thaw as the freeze lasted).
/// </summary>
[Trait("Privileges", "root")]
[Collection("resume timing")]
public sealed class ResumeKickTests
{
    /// <summary>Generous for a noisy CI machine; measured here well under 10 ms.</summary>
    private static readonly TimeSpan KickBound = TimeSpan.FromMilliseconds(300);

    private sealed record Probe(string Name, TcpPair Pair, bool ClientToServer, bool Kick)
    {
        public Socket Sender => ClientToServer ? Pair.Client : Pair.Server;
        public Socket Receiver => ClientToServer ? Pair.Server : Pair.Client;
    }

    [RootTheory]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(20)]
    public void After_a_thaw_with_the_kick_every_direction_answers_within_the_bound_and_without_it_the_back_off_shows(int seconds)
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B);
        var probes = new List<Probe>();
        try
        {
            using var freezer = TcpFreezer.Attach(options);
            network.SettleNeighbours();
            int port = 8200;
            foreach (bool kick in new[] { true, false })
                foreach (AddressFamily family in new[] { AddressFamily.InterNetwork, AddressFamily.InterNetworkV6 })
                    foreach (bool clientToServer in new[] { true, false })
                    {
                        var pair = TcpPair.Open(network.A, network.B, new IPEndPoint(network.AddressB(family), port++));
                        string name = $"{(family == AddressFamily.InterNetwork ? "IPv4" : "IPv6")} {(clientToServer ? "client to server" : "server to client")}, kick {(kick ? "on" : "off")}";
                        probes.Add(new Probe(name, pair, clientToServer, kick));
                        TcpPair.AssertRoundTrip(pair.Client, pair.Server, "warm up");
                        TcpPair.AssertRoundTrip(pair.Server, pair.Client, "warm up");
                    }

            freezer.Freeze(probes.Select(p => p.Pair.ServerView));
            Thread.Sleep(200);
            foreach (Probe p in probes)
                p.Sender.Send(Encoding.ASCII.GetBytes("sent while frozen;"));
            Thread.Sleep(TimeSpan.FromSeconds(seconds));

            Probe[] without = probes.Where(p => !p.Kick).ToArray(), with = probes.Where(p => p.Kick).ToArray();
            ThawResult quiet = freezer.Thaw(without.Select(p => p.Pair.ServerView), kick: false);
            Assert.Equal(0, quiet.Kick.PacketsSent);
            Task<TimeSpan?>[] quietLags = without.Select(p => TimeToFirstByte(p.Receiver, TimeSpan.FromSeconds(seconds * 2 + 5))).ToArray();
            ThawResult kicked = freezer.Thaw(with.Select(p => p.Pair.ServerView));
            Task<TimeSpan?>[] kickedLags = with.Select(p => TimeToFirstByte(p.Receiver, KickBound + TimeSpan.FromSeconds(2))).ToArray();
            Assert.Equal(with.Length, kicked.Kick.ConnectionsKicked);
            Assert.InRange(kicked.Kick.PacketsSent, with.Length, with.Length * 2 * TcpFreeze.Resume.ResumeKick.MaxPacketsPerDirection);

            string Report(Probe[] which, Task<TimeSpan?>[] lags) => string.Join("; ", which.Zip(lags, (p, l) =>
                $"{p.Name}: {(l.Result is { } t ? $"{t.TotalMilliseconds:F1} ms" : "nothing")}"));
            Task.WaitAll(kickedLags);
            Assert.True(kickedLags.All(l => l.Result <= KickBound),
                $"frozen {seconds} s, kick on: not every connection answered within {KickBound.TotalMilliseconds} ms of the thaw: {Report(with, kickedLags)}");

            // Without the kick the senders wait out their back-off: after a few seconds frozen that
            // is well over the bound (measured here: 1.3-1.8 s after 5 s, 6-7 s after 20 s).
            Task.WaitAll(quietLags);
            Assert.True(quietLags.All(l => l.Result is not null), $"kick off: {Report(without, quietLags)}");
            if (seconds >= 5)
                Assert.True(quietLags.All(l => l.Result > KickBound), $"frozen {seconds} s, kick off: no back-off to show: {Report(without, quietLags)}");

            foreach (Probe p in probes)
            {
                Assert.Equal("sent while frozen;", Encoding.ASCII.GetString(TcpPair.ReadExactly(p.Receiver, 18, TimeSpan.FromSeconds(5))));
                Assert.False(TcpPair.Readable(p.Receiver, TimeSpan.FromMilliseconds(50)), $"{p.Name}: bytes arrived twice");
                TcpPair.AssertRoundTrip(p.Pair.Client, p.Pair.Server, "after the thaw");
                FreezeTests.AssertHealthy(p.Pair);
            }
        }
        finally
        {
            TcpFreezer.Detach(options);
            foreach (Probe p in probes)
                p.Pair.Dispose();
        }
    }

    [RootFact]
    public void A_thaw_of_connections_that_dropped_no_data_sends_no_packet()
    {
        using var network = TestNetwork.Create();
        network.SettleNeighbours();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B);
        using var pair = TcpPair.Open(network.A, network.B, new IPEndPoint(network.AddressB(AddressFamily.InterNetwork), 8300));
        using var idle6 = TcpPair.Open(network.A, network.B, new IPEndPoint(network.AddressB(AddressFamily.InterNetworkV6), 8301));
        try
        {
            using var freezer = TcpFreezer.Attach(options);
            freezer.Freeze([pair.ServerView, idle6.ServerView]);
            Thread.Sleep(1000);
            long before = IcmpDestinationUnreachableIn(network.A) + IcmpDestinationUnreachableIn(network.B);
            ThawResult thawed = freezer.Thaw([pair.ServerView, idle6.ServerView]);
            Assert.Equal(2, thawed.ConnectionsThawed);
            Assert.Equal(KickResult.None, thawed.Kick);
            Thread.Sleep(200);
            Assert.Equal(before, IcmpDestinationUnreachableIn(network.A) + IcmpDestinationUnreachableIn(network.B));
            TcpPair.AssertRoundTrip(pair.Client, pair.Server, "after the thaw");
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }

    [RootFact]
    public void A_held_kick_is_sent_when_asked_once_even_after_the_freezer_is_disposed()
    {
        using var network = TestNetwork.Create();
        network.SettleNeighbours();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B);
        using var pair = TcpPair.Open(network.A, network.B, new IPEndPoint(network.AddressB(AddressFamily.InterNetwork), 8320));
        try
        {
            PendingKick kick;
            using (var freezer = TcpFreezer.Attach(options))
            {
                freezer.Freeze([pair.ServerView]);
                pair.Client.Send("held;"u8.ToArray());
                Thread.Sleep(2000);
                long before = IcmpDestinationUnreachableIn(network.A);
                (ThawResult thawed, kick) = freezer.ThawAndHoldKick([pair.ServerView]);
                Assert.Equal(1, thawed.ConnectionsThawed);
                Assert.Equal(KickResult.None, thawed.Kick);
                Assert.False(kick.Sent);
                Thread.Sleep(200);
                Assert.Equal(before, IcmpDestinationUnreachableIn(network.A)); // nothing sent until asked
                Assert.False(TcpPair.Readable(pair.Server, TimeSpan.FromMilliseconds(100)), "the client resent before the kick (back-off shorter than the wait?)");
            }
            long atSend = IcmpDestinationUnreachableIn(network.A);
            KickResult sent = kick.Send();
            Assert.Equal(1, sent.ConnectionsKicked);
            Assert.True(sent.PacketsSent > 0, sent.ToString());
            Assert.True(TcpPair.Readable(pair.Server, KickBound), "the connection did not answer at once after the held kick");
            Assert.Equal(atSend + sent.PacketsSent, IcmpDestinationUnreachableIn(network.A));
            Assert.True(kick.Sent);
            Assert.Equal(KickResult.None, kick.Send()); // once
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }

    [RootFact]
    public void A_held_kick_replays_the_segment_the_thaw_took_when_it_is_sent_and_only_once()
    {
        using var network = TestNetwork.Create();
        network.SettleNeighbours();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B);
        using var pair = TcpPair.Open(network.A, network.B, new IPEndPoint(network.AddressB(AddressFamily.InterNetwork), 8321));
        try
        {
            using var freezer = TcpFreezer.Attach(options);
            freezer.Freeze([pair.ServerView]);
            pair.Client.Send("kept;"u8.ToArray());
            Thread.Sleep(500); // the first transmission and a retransmission are dropped; the programs keep the last
            (ThawResult thawed, PendingKick kick) = freezer.ThawAndHoldKick([pair.ServerView]);
            Assert.Equal(1, thawed.ConnectionsThawed);
            // The thaw took the kept segment from the maps; the kick replays it when it is sent, not before.
            Assert.False(TcpPair.Readable(pair.Server, TimeSpan.FromMilliseconds(100)), "the kept segment arrived before the held kick was sent");
            // Its record stays in the map until the kick is sent (freeing it is work kept out of the caller's answer), then goes.
            using var replay = BpfMap.OpenPinned(Path.Combine(freezer.PinDirectory, "replay")).As<ConnectionKey, ReplayRecord>();
            Assert.True(replay.TryLookup(pair.ServerView, out _), "the held thaw deleted the record before its kick was sent");
            KickResult sent = kick.Send();
            Assert.Equal(1, sent.SegmentsReplayed);
            Assert.False(replay.TryLookup(pair.ServerView, out _), "sending the held kick left the record it replayed in the map");
            Assert.True(TcpPair.Readable(pair.Server, KickBound), "the replayed segment did not reach the server at once");
            Assert.Equal("kept;", System.Text.Encoding.ASCII.GetString(TcpPair.ReadExactly(pair.Server, 5, KickBound)));

            // Taken once: a second freeze and held thaw with nothing sent meanwhile has nothing to replay.
            freezer.Freeze([pair.ServerView]);
            (_, PendingKick again) = freezer.ThawAndHoldKick([pair.ServerView]);
            Assert.Equal(0, again.Send().SegmentsReplayed);
            TcpPair.AssertRoundTrip(pair.Client, pair.Server, "after the second thaw");
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }

    [RootFact]
    public void The_kick_goes_only_to_the_connections_this_thaw_released()
    {
        using var network = TestNetwork.Create();
        network.SettleNeighbours();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B);
        using var released = TcpPair.Open(network.A, network.B, new IPEndPoint(network.AddressB(AddressFamily.InterNetwork), 8310));
        using var stillFrozen = TcpPair.Open(network.A, network.B, new IPEndPoint(network.AddressB(AddressFamily.InterNetwork), 8311));
        try
        {
            using var freezer = TcpFreezer.Attach(options);
            freezer.Freeze([released.ServerView, stillFrozen.ServerView]);
            released.Client.Send("a;"u8.ToArray());
            stillFrozen.Client.Send("b;"u8.ToArray());
            Thread.Sleep(2000);
            long before = IcmpDestinationUnreachableIn(network.A);
            ThawResult thawed = freezer.Thaw([released.ServerView]);
            Assert.Equal(1, thawed.Kick.ConnectionsKicked);
            Assert.True(TcpPair.Readable(released.Server, KickBound), "the released connection did not answer at once");
            Assert.Equal(before + thawed.Kick.PacketsSent, IcmpDestinationUnreachableIn(network.A));
            Assert.False(TcpPair.Readable(stillFrozen.Server, TimeSpan.FromMilliseconds(500)), "the connection that stayed frozen got through");
            // A thaw of a key that is not frozen (any more) kicks nothing.
            Assert.Equal(KickResult.None, freezer.Thaw([released.ServerView]).Kick);
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }

    [RootTheory]
    [InlineData(AddressFamily.InterNetwork)]
    [InlineData(AddressFamily.InterNetworkV6)]
    public void A_peer_that_set_IP_RECVERR_sees_one_unreachable_error_and_its_connection_carries_on(AddressFamily family)
    {
        using var network = TestNetwork.Create();
        network.SettleNeighbours();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B);
        using var pair = TcpPair.Open(network.A, network.B, new IPEndPoint(network.AddressB(family), 8320));
        if (family == AddressFamily.InterNetwork)
            pair.Client.SetRawSocketOption(0 /* SOL_IP */, 11 /* IP_RECVERR */, BitConverter.GetBytes(1));
        else
            pair.Client.SetRawSocketOption(41 /* SOL_IPV6 */, 25 /* IPV6_RECVERR */, BitConverter.GetBytes(1));
        try
        {
            using var freezer = TcpFreezer.Attach(options);
            freezer.Freeze([pair.ServerView]);
            pair.Client.Send("request;"u8.ToArray());
            // 2.5 s: between two of the client's retransmissions (see KickBound).
            Thread.Sleep(2500);
            Assert.True(freezer.Thaw([pair.ServerView]).Kick.PacketsSent > 0);
            Assert.Equal("request;", Encoding.ASCII.GetString(TcpPair.ReadExactly(pair.Server, 8, KickBound)));

            // The ICMP messages leave one pending error on the client's socket (sk_err, as for any
            // ICMP error on a socket with IP_RECVERR): EHOSTUNREACH for IPv4's host unreachable,
            // ENETUNREACH for ICMPv6's no route. Its next call without data queued, or SO_ERROR as
            // here, reports it once. The connection itself is untouched.
            Assert.Equal((int)(family == AddressFamily.InterNetwork ? SocketError.HostUnreachable : SocketError.NetworkUnreachable), TcpPair.PendingError(pair.Client));
            Assert.Equal(0, TcpPair.PendingError(pair.Client));
            TcpPair.AssertRoundTrip(pair.Server, pair.Client, "reply;");
            TcpPair.AssertRoundTrip(pair.Client, pair.Server, "after the error");
            FreezeTests.AssertHealthy(pair);
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }

    /// <summary>How long after now the first byte becomes readable on <paramref name="socket"/>; null if none within <paramref name="wait"/>.</summary>
    private static Task<TimeSpan?> TimeToFirstByte(Socket socket, TimeSpan wait)
    {
        var clock = Stopwatch.StartNew();
        return Task.Factory.StartNew(() => socket.Poll(wait, SelectMode.SelectRead) ? clock.Elapsed : (TimeSpan?)null, TaskCreationOptions.LongRunning);
    }

    /// <summary>ICMP and ICMPv6 destination-unreachable messages received in a namespace (from /proc/net/snmp{,6}).</summary>
    internal static long IcmpDestinationUnreachableIn(NetworkNamespace ns) => ns.Run(() =>
    {
        string[] snmp = File.ReadAllLines("/proc/thread-self/net/snmp");
        string[] names = snmp.First(l => l.StartsWith("Icmp: InMsgs", StringComparison.Ordinal)).Split(' ');
        string[] values = snmp.Where(l => l.StartsWith("Icmp: ", StringComparison.Ordinal)).ElementAt(1).Split(' ');
        long v4 = long.Parse(values[Array.IndexOf(names, "InDestUnreachs")]);
        string six = File.ReadAllLines("/proc/thread-self/net/snmp6").First(l => l.StartsWith("Icmp6InDestUnreachs", StringComparison.Ordinal));
        return v4 + long.Parse(six.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
    });
}
