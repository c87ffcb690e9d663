using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// Frames that BPF_PROG_TEST_RUN will not build an skb from (an IP frame cut inside its
/// fixed header) can still reach TC on a real interface: sent raw (AF_PACKET) over the
/// test's veth pair, every cut of a frozen connection's frame reaches the attached TC
/// programs (their pass counter counts it) and passes; the whole frame drops.
/// </summary>
[Trait("Privileges", "root")]
public sealed class PacketPathLiveTests
{
    // Sends each hex-encoded frame given as an argument out of veth0, as is.
    private const string Sender = """
        import socket, sys
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind(('veth0', 0))
        refused = []
        for frame in sys.argv[1:]:
            try:
                s.send(bytes.fromhex(frame))
            except OSError as e:
                refused.append(f'{len(frame) // 2} bytes: errno {e.errno}')
        print('sent; refused: ' + ', '.join(refused), flush=True)
        """;

    /// <summary>Sends the frames; returns what the kernel refused to send ("N bytes: errno E", ...), empty when none.</summary>
    private static string Send(string ns, IEnumerable<byte[]> frames)
    {
        using var sender = ScriptProcess.Start(ns, Sender, frames.Select(Convert.ToHexString).ToArray());
        return sender.Expect("sent; refused:", TimeSpan.FromSeconds(20));
    }

    [RootTheory]
    [InlineData(AddressFamily.InterNetwork)]
    [InlineData(AddressFamily.InterNetworkV6)]
    public void A_frozen_connections_frame_cut_anywhere_before_the_end_of_its_tcp_header_passes_tc_on_a_real_interface(AddressFamily family)
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B, TestNetwork.Interface) with { IngressHook = IngressHook.Tc };
        var local = new IPEndPoint(network.AddressB(family), 7000);
        var remote = new IPEndPoint(network.AddressA(family), 40000);
        byte[] inbound = Packets.Tcp(remote, local), outbound = Packets.Tcp(local, remote);
        try
        {
            using TcpFreezer freezer = TcpFreezer.Attach(options);
            freezer.Freeze([new ConnectionKey(local, remote)]);

            // Ingress in B (sent from A), then egress in B (sent from B): every cut from a bare
            // Ethernet header up to one byte short of the TCP header's end.
            foreach ((string from, byte[] frame, string direction) in new[] { (network.NameA, inbound, "ingress"), (network.NameB, outbound, "egress") })
            {
                byte[][] cuts = Enumerable.Range(14, frame.Length - 14).Select(length => frame[..length]).ToArray();
                FreezerStatistics before = freezer.GetStatistics();
                string refused = Send(from, cuts);
                Assert.True(refused.Length == 0, $"{direction}: sending refused {refused}");
                FreezerStatistics after = WaitFor(freezer, s => s.Passed >= before.Passed + (ulong)cuts.Length);
                Assert.True(after.Passed >= before.Passed + (ulong)cuts.Length,
                    $"{direction}: the programs passed {after.Passed - before.Passed} packets; {cuts.Length} cut frames were sent");
                Assert.Equal(before.DroppedIngress, after.DroppedIngress);
                Assert.Equal(before.DroppedEgress, after.DroppedEgress);

                // The whole frame drops. On egress the sender is told it was sent (TC_ACT_STOLEN, not
                // SHOT, which fails send() with ENOBUFS and makes TCP retry without backing off).
                string wholeRefused = Send(from, [frame]);
                Assert.Equal("", wholeRefused);
                FreezerStatistics whole = WaitFor(freezer, s => s.DroppedIngress + s.DroppedEgress > after.DroppedIngress + after.DroppedEgress);
                Assert.Equal(direction == "ingress" ? after.DroppedIngress + 1 : after.DroppedIngress, whole.DroppedIngress);
                Assert.Equal(direction == "egress" ? after.DroppedEgress + 1 : after.DroppedEgress, whole.DroppedEgress);
            }
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }

    private static FreezerStatistics WaitFor(TcpFreezer freezer, Func<FreezerStatistics, bool> done)
    {
        var clock = Stopwatch.StartNew();
        FreezerStatistics stats = freezer.GetStatistics();
        while (!done(stats) && clock.Elapsed < TimeSpan.FromSeconds(5))
        {
            Thread.Sleep(20);
            stats = freezer.GetStatistics();
        }
        return stats;
    }
}
