using System.Net;
using System.Net.Sockets;
using System.Text;
using TcpFreeze.Ebpf.Interop;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// Freezing real TCP connections between two namespaces of the test's own: the
/// kernel programs are loaded and attached, packets really flow over a veth pair.
/// </summary>
[Trait("Privileges", "root")]
public sealed class FreezeTests
{
    private static readonly TimeSpan Silence = TimeSpan.FromSeconds(1.5);
    private static readonly TimeSpan Delivery = TimeSpan.FromSeconds(20);

    [RootTheory]
    [InlineData(AddressFamily.InterNetwork)]
    [InlineData(AddressFamily.InterNetworkV6)]
    public void Frozen_connection_is_silent_both_ways_and_delivers_every_byte_in_order_after_thaw(AddressFamily family)
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        using var frozen = TcpPair.Open(network.A, network.B, new IPEndPoint(network.AddressB(family), 8080));
        using var bystander = TcpPair.Open(network.A, network.B, new IPEndPoint(network.AddressB(family), 8081));
        FreezerOptions options = pins.Options(network.B);
        using var freezer = TcpFreezer.Attach(options);
        try
        {
            AssertFrozenIsSilentAndThawDeliversEverything(freezer, frozen, bystander);
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }

    [RootTheory]
    [InlineData(AddressFamily.InterNetwork)]
    [InlineData(AddressFamily.InterNetworkV6)]
    public void Beside_a_foreign_xdp_program_tc_ingress_freezes_and_thaws_while_that_program_keeps_running(AddressFamily family)
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        using ForeignXdpProgram foreign = ForeignXdpProgram.Counting();
        foreign.AttachTo(network.B, TestNetwork.Interface);
        using var frozen = TcpPair.Open(network.A, network.B, new IPEndPoint(network.AddressB(family), 8080));
        using var bystander = TcpPair.Open(network.A, network.B, new IPEndPoint(network.AddressB(family), 8081));
        FreezerOptions options = pins.Options(network.B) with { IngressHook = IngressHook.Tc };
        try
        {
            using (TcpFreezer freezer = TcpFreezer.Attach(options))
            {
                Assert.Equal(foreign.Id, ForeignXdpProgram.AttachedId(network.B, TestNetwork.Interface));
                ulong seenBefore = foreign.Packets;
                AssertFrozenIsSilentAndThawDeliversEverything(freezer, frozen, bystander);
                // It saw the traffic of the whole freeze and thaw, and TcpFreeze judged what it passed.
                Assert.True(foreign.Packets > seenBefore + 10, $"the foreign XDP program saw {foreign.Packets - seenBefore} packets");
                Assert.Equal(foreign.Id, ForeignXdpProgram.AttachedId(network.B, TestNetwork.Interface));
            }

            DetachResult detached = TcpFreezer.Detach(options);
            Assert.Contains(TestNetwork.Interface, detached.Interfaces);
            KernelState.AssertNothingLeft(network.B, options);
            Assert.Equal(foreign.Id, ForeignXdpProgram.AttachedId(network.B, TestNetwork.Interface));
            ulong seenAfterDetach = foreign.Packets;
            TcpPair.AssertRoundTrip(frozen.Client, frozen.Server, "after the detach");
            Assert.True(foreign.Packets > seenAfterDetach, "the foreign XDP program stopped seeing traffic after the detach");
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }

    /// <summary>
    /// Freezes <paramref name="frozen"/> (as its server's host sees it, through
    /// <paramref name="freezer"/>), proves it silent both ways while <paramref name="bystander"/>
    /// between the same hosts flows, thaws it and proves every byte sent meanwhile arrives once, in order.
    /// </summary>
    internal static void AssertFrozenIsSilentAndThawDeliversEverything(TcpFreezer freezer, TcpPair frozen, TcpPair bystander)
    {
        TcpPair.AssertRoundTrip(frozen.Client, frozen.Server, "before the freeze");

        FreezeResult result = freezer.Freeze([frozen.ServerView], lease: Lease.Forever);
        Assert.Equal(1, result.ConnectionsFrozen);

        string fromClient = Messages("client", 20), fromServer = Messages("server", 20);
        SendInPieces(frozen.Client, fromClient);
        SendInPieces(frozen.Server, fromServer);

        Assert.False(TcpPair.Readable(frozen.Server, Silence), "a byte from the client reached the frozen server");
        Assert.False(TcpPair.Readable(frozen.Client, TimeSpan.FromMilliseconds(300)), "a byte from the frozen server reached the client");

        // The other connection between the same two hosts is untouched.
        TcpPair.AssertRoundTrip(bystander.Client, bystander.Server, "bystander request");
        TcpPair.AssertRoundTrip(bystander.Server, bystander.Client, "bystander reply");

        AssertHealthy(frozen);
        FrozenConnection listed = Assert.Single(freezer.ListConnections());
        Assert.Equal(frozen.ServerView, listed.Key);
        Assert.Null(listed.LeaseRemaining);
        Assert.True(listed.DroppedPackets > 0, "the frozen connection dropped no packet");
        FreezerStatistics stats = freezer.GetStatistics();
        Assert.True(stats.DroppedIngress > 0 && stats.DroppedEgress > 0, $"expected drops both ways, got {stats}");

        ThawResult thaw = freezer.Thaw([frozen.ServerView]);
        Assert.Equal(1, thaw.ConnectionsThawed);

        Assert.Equal(fromClient, Encoding.ASCII.GetString(TcpPair.ReadExactly(frozen.Server, fromClient.Length, Delivery)));
        Assert.Equal(fromServer, Encoding.ASCII.GetString(TcpPair.ReadExactly(frozen.Client, fromServer.Length, Delivery)));
        Assert.False(TcpPair.Readable(frozen.Server, TimeSpan.FromMilliseconds(200)), "bytes arrived twice");
        TcpPair.AssertRoundTrip(frozen.Client, frozen.Server, "after the thaw");
        AssertHealthy(frozen);
        Assert.Empty(freezer.ListConnections());
    }

    [RootTheory]
    [InlineData(AddressFamily.InterNetwork)]
    [InlineData(AddressFamily.InterNetworkV6)]
    public void Frozen_listener_takes_no_new_connection_and_freezes_its_existing_ones_while_other_ports_accept(AddressFamily family)
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        var frozenEndpoint = new IPEndPoint(network.AddressB(family), 9090);
        using var existing = TcpPair.Open(network.A, network.B, frozenEndpoint);
        using var open = TcpPair.Listen(network.B, new IPEndPoint(network.AddressB(family), 9091));
        FreezerOptions options = pins.Options(network.B);
        using var freezer = TcpFreezer.Attach(options);
        try
        {
            // Freeze the any-address form: it covers every local address of the family.
            var any = new EndpointKey(new IPEndPoint(family == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 9090));
            Assert.Equal(1, freezer.Freeze([], [any]).EndpointsFrozen);

            using Socket late = TcpPair.NewClient(network.A, family);
            Task connecting = late.ConnectAsync(frozenEndpoint);
            Assert.False(connecting.Wait(Silence), "a new connection to the frozen listener completed");

            using (Socket other = TcpPair.NewClient(network.A, family))
            {
                Assert.True(other.ConnectAsync(new IPEndPoint(network.AddressB(family), 9091)).Wait(TimeSpan.FromSeconds(10)), "another port stopped accepting");
                using Socket accepted = open.Accept();
                TcpPair.AssertRoundTrip(other, accepted, "other port");
            }

            existing.Client.Send(Encoding.ASCII.GetBytes("held"));
            Assert.False(TcpPair.Readable(existing.Server, TimeSpan.FromMilliseconds(500)), "an existing connection to the frozen endpoint was not frozen");
            Assert.True(Assert.Single(freezer.ListEndpoints()).DroppedPackets > 0);

            Assert.Equal(1, freezer.Thaw([], [any]).EndpointsThawed);
            Assert.True(connecting.Wait(Delivery), "the pending connection did not complete after the thaw");
            using Socket lateServer = existing.Listener.Accept();
            TcpPair.AssertRoundTrip(late, lateServer, "late client");
            Assert.Equal("held", Encoding.ASCII.GetString(TcpPair.ReadExactly(existing.Server, 4, Delivery)));
            AssertHealthy(existing);
        }
        finally
        {
            TcpFreezer.Detach(options);
            open.Dispose();
        }
    }

    [RootFact]
    public void Connection_frozen_with_a_lease_flows_again_after_the_lease_without_a_thaw()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        using var pair = TcpPair.Open(network.A, network.B, new IPEndPoint(network.AddressB(AddressFamily.InterNetwork), 8080));
        FreezerOptions options = pins.Options(network.B);
        using var freezer = TcpFreezer.Attach(options);
        try
        {
            freezer.Freeze([pair.ServerView], lease: TimeSpan.FromSeconds(2));
            FrozenConnection listed = Assert.Single(freezer.ListConnections());
            Assert.InRange(listed.LeaseRemaining!.Value, TimeSpan.FromSeconds(0.5), TimeSpan.FromSeconds(2));

            pair.Client.Send(Encoding.ASCII.GetBytes("leased"));
            Assert.False(TcpPair.Readable(pair.Server, TimeSpan.FromMilliseconds(700)), "the leased freeze did not hold");
            Assert.Equal("leased", Encoding.ASCII.GetString(TcpPair.ReadExactly(pair.Server, 6, Delivery)));

            Assert.True(Assert.Single(freezer.ListConnections()).IsExpired);
            Assert.Equal(1, freezer.RemoveExpired());
            Assert.Empty(freezer.ListConnections());
            AssertHealthy(pair);
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }

    [RootTheory]
    [InlineData("127.0.0.1", IngressHook.Xdp)]
    [InlineData("::1", IngressHook.Xdp)]
    [InlineData("127.0.0.1", IngressHook.Tc)]
    [InlineData("::1", IngressHook.Tc)]
    public void Loopback_connections_freeze_and_thaw(string address, IngressHook hook)
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        using var pair = TcpPair.Open(network.A, network.A, new IPEndPoint(IPAddress.Parse(address), 7070));
        FreezerOptions options = pins.Options(network.A) with { IngressHook = hook };
        using var freezer = TcpFreezer.Attach(options);
        try
        {
            // Loopback always takes the TC ingress program, whatever was asked (CRIU's marked packets must pass there).
            Assert.Contains(freezer.AttachedInterfaces, i => i.Name == "lo" && i.IngressHook == IngressHook.Tc);
            freezer.Freeze([pair.ServerView]);
            pair.Client.Send(Encoding.ASCII.GetBytes("ping"));
            pair.Server.Send(Encoding.ASCII.GetBytes("pong"));
            Assert.False(TcpPair.Readable(pair.Server, Silence), "loopback bytes reached the frozen server");
            Assert.False(TcpPair.Readable(pair.Client, TimeSpan.FromMilliseconds(300)), "loopback bytes reached the client");
            AssertHealthy(pair);

            freezer.Thaw([pair.ServerView]);
            Assert.Equal("ping", Encoding.ASCII.GetString(TcpPair.ReadExactly(pair.Server, 4, Delivery)));
            Assert.Equal("pong", Encoding.ASCII.GetString(TcpPair.ReadExactly(pair.Client, 4, Delivery)));
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }

    internal static string Messages(string who, int count)
        => string.Concat(Enumerable.Range(0, count).Select(i => $"{who}-{i:D4};"));

    private static void SendInPieces(Socket socket, string text)
    {
        foreach (string piece in text.Split(';', StringSplitOptions.RemoveEmptyEntries))
            socket.Send(Encoding.ASCII.GetBytes(piece + ";"));
    }

    internal static void AssertHealthy(TcpPair pair)
    {
        Assert.Equal(TcpPair.Established, TcpPair.TcpState(pair.Client));
        Assert.Equal(TcpPair.Established, TcpPair.TcpState(pair.Server));
        Assert.Equal(0, TcpPair.PendingError(pair.Client));
        Assert.Equal(0, TcpPair.PendingError(pair.Server));
    }
}
