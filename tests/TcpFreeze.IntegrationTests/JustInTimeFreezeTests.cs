using System.Net;
using System.Net.Sockets;
using System.Text;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// <see cref="FreezeTiming.JustInTime"/>, the CRIU hook's freeze: a frozen key drops its packets only
/// while its local socket is in TCP repair mode or gone, decided per packet by the kernel programs.
/// The tests put sockets into repair mode themselves (TCP_REPAIR, as CRIU does) on real connections
/// across a veth pair and over loopback.
/// </summary>
public sealed class JustInTimeFreezeTests
{
    private const int SolTcp = 6, TcpRepair = 19;
    private static readonly TimeSpan Silence = TimeSpan.FromSeconds(1.5);
    private static readonly TimeSpan Delivery = TimeSpan.FromSeconds(10);

    private static void SetRepair(Socket socket, bool on) => socket.SetRawSocketOption(SolTcp, TcpRepair, BitConverter.GetBytes(on ? 1 : 0));

    [RootTheory]
    [InlineData(AddressFamily.InterNetwork, false)]
    [InlineData(AddressFamily.InterNetworkV6, false)]
    [InlineData(AddressFamily.InterNetwork, true)]
    [InlineData(AddressFamily.InterNetworkV6, true)]
    public void A_just_in_time_freeze_serves_the_connection_until_its_socket_enters_repair_mode_and_again_once_it_leaves(AddressFamily family, bool loopback)
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        IPAddress address = loopback ? (family == AddressFamily.InterNetwork ? IPAddress.Loopback : IPAddress.IPv6Loopback) : network.AddressB(family);
        using var pair = TcpPair.Open(loopback ? network.B : network.A, network.B, new IPEndPoint(address, 7301));
        FreezerOptions options = pins.Options(network.B);
        using var freezer = TcpFreezer.Attach(options);
        try
        {
            freezer.Freeze([pair.ServerView], [new EndpointKey(new IPEndPoint(address, 7301))], TimeSpan.FromMinutes(2), FreezeTiming.JustInTime);

            // An ordinary socket: nothing is held.
            TcpPair.AssertRoundTrip(pair.Client, pair.Server, "frozen just in time, socket not in repair mode");
            TcpPair.AssertRoundTrip(pair.Server, pair.Client, "the reply");
            Assert.Equal(0ul, Assert.Single(freezer.ListConnections()).DroppedPackets);

            // In repair mode (CRIU dumping it): the client's bytes are dropped, not acknowledged.
            SetRepair(pair.Server, true);
            pair.Client.Send(Encoding.ASCII.GetBytes("held"));
            Assert.True(SpinWait.SpinUntil(() => freezer.ListConnections()[0].DroppedPackets > 0, Delivery), "nothing was dropped while the socket was in repair mode");
            Thread.Sleep(300);

            // Out of repair mode (CRIU resuming it): the client's retransmission goes through, once.
            SetRepair(pair.Server, false);
            Assert.Equal("held", Encoding.ASCII.GetString(TcpPair.ReadExactly(pair.Server, 4, Delivery)));
            Assert.False(TcpPair.Readable(pair.Server, TimeSpan.FromMilliseconds(200)), "bytes arrived twice");
            TcpPair.AssertRoundTrip(pair.Server, pair.Client, "after repair mode");
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }

    [RootTheory]
    [InlineData(AddressFamily.InterNetwork)]
    [InlineData(AddressFamily.InterNetworkV6)]
    public void A_connection_whose_socket_closed_in_repair_mode_stays_silent_without_a_reset_until_thawed(AddressFamily family)
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        var endpoint = new IPEndPoint(network.AddressB(family), 7302);
        using var pair = TcpPair.Open(network.A, network.B, endpoint);
        FreezerOptions options = pins.Options(network.B);
        using var freezer = TcpFreezer.Attach(options);
        try
        {
            freezer.Freeze([pair.ServerView], [], TimeSpan.FromMinutes(2), FreezeTiming.JustInTime);
            pair.Listener.Close();
            // What a dump does: repair mode, then the process is killed (a repair-mode socket closes without a FIN or reset).
            SetRepair(pair.Server, true);
            pair.Server.Close();

            pair.Client.Send(Encoding.ASCII.GetBytes("anyone?"));
            Assert.True(SpinWait.SpinUntil(() => freezer.ListConnections()[0].DroppedPackets > 0, Delivery), "the client's segment to a gone socket was not dropped");
            // Without the freeze the kernel would answer with a reset; frozen, the client just waits.
            Assert.False(TcpPair.Readable(pair.Client, Silence), "the client heard something (a reset?) from a frozen connection whose socket is gone");
            Assert.Equal(0, pair.Client.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error) is int e ? e : -1);
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }

    [RootTheory]
    [InlineData(AddressFamily.InterNetwork)]
    [InlineData(AddressFamily.InterNetworkV6)]
    public void Another_process_socket_on_a_frozen_endpoint_is_never_held_and_a_live_listener_takes_new_connections(AddressFamily family)
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        var endpoint = new IPEndPoint(network.AddressB(family), 7303);
        // The "other process": a listener and a connection of its own on the frozen endpoint.
        using var other = TcpPair.Open(network.A, network.B, endpoint);
        FreezerOptions options = pins.Options(network.B);
        using var freezer = TcpFreezer.Attach(options);
        try
        {
            var any = new EndpointKey(new IPEndPoint(family == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 7303));
            freezer.Freeze([], [any], TimeSpan.FromMinutes(2), FreezeTiming.JustInTime);

            TcpPair.AssertRoundTrip(other.Client, other.Server, "another socket on the frozen endpoint");
            using Socket late = TcpPair.NewClient(network.A, family);
            Assert.True(late.ConnectAsync(endpoint).Wait(Delivery), "a new connection to the live listener did not complete");
            using Socket accepted = TcpPair.Accept(other.Listener, Delivery);
            TcpPair.AssertRoundTrip(late, accepted, "a new connection");
            Assert.Equal(0ul, Assert.Single(freezer.ListEndpoints()).DroppedPackets);

            // Once nobody listens, a SYN to the frozen endpoint waits (dropped) instead of being refused.
            other.Listener.Close();
            using Socket waiting = TcpPair.NewClient(network.A, family);
            Task connecting = waiting.ConnectAsync(endpoint);
            Assert.False(connecting.Wait(Silence), "a connection to a frozen endpoint with no listener completed or was refused at once");
            Assert.True(freezer.ListEndpoints()[0].DroppedPackets > 0, "the SYN was not dropped");
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }

    [RootTheory]
    [InlineData(AddressFamily.InterNetwork)]
    [InlineData(AddressFamily.InterNetworkV6)]
    public void A_connection_left_in_the_accept_queue_of_a_closed_listener_is_reset_not_left_hanging(AddressFamily family)
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        var endpoint = new IPEndPoint(network.AddressB(family), 7304);
        Socket listener = TcpPair.Listen(network.B, endpoint);
        FreezerOptions options = pins.Options(network.B);
        using var freezer = TcpFreezer.Attach(options);
        try
        {
            using Socket queued = TcpPair.NewClient(network.A, family);
            queued.Connect(endpoint); // the handshake completes in the kernel; nobody accepts
            var any = new EndpointKey(new IPEndPoint(family == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 7304));
            freezer.Freeze([], [any], TimeSpan.FromMinutes(2), FreezeTiming.JustInTime);
            queued.Send(Encoding.ASCII.GetBytes("request"));
            Thread.Sleep(100);

            // The server dies (CRIU does not dump an accept queue): the kernel resets the queued connection,
            // and that reset must reach the client, which can then retry at once.
            listener.Close();
            Assert.True(TcpPair.Readable(queued, Delivery),
                $"the client of a queued connection heard nothing ({freezer.GetStatistics()}, endpoint drops {freezer.ListEndpoints()[0].DroppedPackets})");
            var buffer = new byte[16];
            SocketException reset = Assert.Throws<SocketException>(() => queued.Receive(buffer));
            Assert.Equal(SocketError.ConnectionReset, reset.SocketErrorCode);
        }
        finally
        {
            listener.Dispose();
            TcpFreezer.Detach(options);
        }
    }

    [RootFact]
    public void A_freeze_of_a_key_frozen_already_takes_the_timing_of_the_latest_call()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        using var pair = TcpPair.Open(network.A, network.B, new IPEndPoint(network.AddressB(AddressFamily.InterNetwork), 7305));
        FreezerOptions options = pins.Options(network.B);
        using var freezer = TcpFreezer.Attach(options);
        try
        {
            freezer.Freeze([pair.ServerView], [], TimeSpan.FromMinutes(2), FreezeTiming.JustInTime);
            TcpPair.AssertRoundTrip(pair.Client, pair.Server, "just in time");
            freezer.Freeze([pair.ServerView], [], TimeSpan.FromMinutes(2), FreezeTiming.Now);
            pair.Client.Send(Encoding.ASCII.GetBytes("x"));
            Assert.False(TcpPair.Readable(pair.Server, Silence), "a byte reached a connection frozen now");
            // A checkpoint's restore freezes its keys just in time again: the held byte goes through.
            freezer.Freeze([pair.ServerView], [], TimeSpan.FromMinutes(2), FreezeTiming.JustInTime);
            Assert.Equal("x", Encoding.ASCII.GetString(TcpPair.ReadExactly(pair.Server, 1, Delivery)));
            Assert.Single(freezer.ListConnections());
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }
}

/// <summary>Issue 19, item 9: one migration's clean-up must never pull the programs from under another.</summary>
public sealed class IdleDetachTests
{
    [RootFact]
    public void An_idle_detach_keeps_the_programs_while_another_freezer_is_open_and_that_freezer_then_freezes()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        using var pair = TcpPair.Open(network.A, network.B, new IPEndPoint(network.AddressB(AddressFamily.InterNetwork), 7306));
        FreezerOptions options = pins.Options(network.B);
        try
        {
            // Another tree's pre-dump has attached and is about to freeze ...
            using TcpFreezer about = TcpFreezer.Attach(options);
            // ... when this tree's post-resume finds nothing frozen and detaches if idle.
            using (TcpFreezer finishing = TcpFreezer.Open(options))
                Assert.Null(finishing.DetachIfIdle());
            Assert.True(TcpFreezer.IsAttached(options), "the idle detach removed the pins of a set another freezer had open");
            about.Freeze([pair.ServerView], [], TimeSpan.FromMinutes(1));
            pair.Client.Send(Encoding.ASCII.GetBytes("x"));
            Assert.False(TcpPair.Readable(pair.Server, TimeSpan.FromSeconds(1)), "the freeze did not hold: the programs were detached");
            about.Thaw([pair.ServerView]);
            Assert.Equal("x", Encoding.ASCII.GetString(TcpPair.ReadExactly(pair.Server, 1, TimeSpan.FromSeconds(10))));
            about.Dispose();

            // The last user's idle detach removes everything.
            using (TcpFreezer last = TcpFreezer.Open(options))
                Assert.NotNull(last.DetachIfIdle());
            KernelState.AssertNothingLeft(network.B, options);
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }
}
