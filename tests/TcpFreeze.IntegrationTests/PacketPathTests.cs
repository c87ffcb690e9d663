using System.Net;
using TcpFreeze.Ebpf.Interop;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// The kernel programs' verdicts on crafted packets, run in the kernel with
/// BPF_PROG_TEST_RUN against a privately loaded (unpinned, unattached) object. Every
/// ingress expectation holds for both ingress hooks, XDP and TC.
/// </summary>
[Trait("Privileges", "root")]
public sealed class PacketPathTests : IDisposable
{
    // The egress program drops with TC_ACT_STOLEN (the stack must see the segment as sent, see
    // bpf/tcpfreeze.bpf.c); the TC ingress program with TC_ACT_SHOT.
    private const uint TcOk = 0, TcShot = 2, TcStolen = 4;
    private readonly PrivateTcpFreezePrograms _programs = new("tcpfreeze-packet-tests", 64);

    private static readonly IPEndPoint Local4 = IPEndPoint.Parse("198.18.0.1:8080"), Remote4 = IPEndPoint.Parse("198.18.0.2:40000");
    private static readonly IPEndPoint Local6 = IPEndPoint.Parse("[2001:db8::1]:8080"), Remote6 = IPEndPoint.Parse("[2001:db8::2]:40000");

    public static TheoryData<IngressHook> IngressHooks => [IngressHook.Xdp, IngressHook.Tc];

    private void FreezeConnection(IPEndPoint local, IPEndPoint remote, ulong deadline = 0)
        => _programs.Connections.Update(new ConnectionKey(local, remote), new FreezeEntry { DeadlineNs = deadline });

    [RootTheory]
    [MemberData(nameof(IngressHooks))]
    public void Frozen_ipv4_and_ipv6_connections_drop_both_ways_and_count_their_drops(IngressHook hook)
    {
        FreezeConnection(Local4, Remote4);
        FreezeConnection(Local6, Remote6);
        Assert.True(_programs.IngressDrops(hook, Packets.Tcp(Remote4, Local4)));
        Assert.Equal(TcStolen, _programs.Tc.TestRun(Packets.Tcp(Local4, Remote4)).ReturnValue);
        Assert.True(_programs.IngressDrops(hook, Packets.Tcp(Remote6, Local6)));
        Assert.Equal(TcStolen, _programs.Tc.TestRun(Packets.Tcp(Local6, Remote6)).ReturnValue);
        Assert.True(_programs.Connections.TryLookup(new ConnectionKey(Local4, Remote4), out FreezeEntry entry));
        Assert.Equal(2UL, entry.Dropped);
    }

    [RootTheory]
    [MemberData(nameof(IngressHooks))]
    public void Packets_of_other_connections_pass(IngressHook hook)
    {
        FreezeConnection(Local4, Remote4);
        var otherPort = new IPEndPoint(Remote4.Address, 40001);
        Assert.False(_programs.IngressDrops(hook, Packets.Tcp(otherPort, Local4)));
        Assert.Equal(TcOk, _programs.Tc.TestRun(Packets.Tcp(Local4, otherPort)).ReturnValue);
        // The frozen tuple in the wrong orientation (local as source on ingress) is another connection.
        Assert.False(_programs.IngressDrops(hook, Packets.Tcp(Local4, Remote4)));
        Assert.Equal(TcOk, _programs.Tc.TestRun(Packets.Tcp(Remote4, Local4)).ReturnValue);
    }

    [RootTheory]
    [MemberData(nameof(IngressHooks))]
    public void Ipv4_options_vlan_tags_and_ipv6_extension_headers_are_parsed(IngressHook hook)
    {
        FreezeConnection(Local4, Remote4);
        FreezeConnection(Local6, Remote6);
        Assert.True(_programs.IngressDrops(hook, Packets.Tcp(Remote4, Local4, ipv4OptionBytes: 40)));
        Assert.True(_programs.IngressDrops(hook, Packets.Tcp(Remote4, Local4, vlanTags: 1)));
        Assert.True(_programs.IngressDrops(hook, Packets.Tcp(Remote4, Local4, vlanTags: 2)));
        Assert.True(_programs.IngressDrops(hook, Packets.Tcp(Remote6, Local6, ipv6Extensions: Packets.HopByHopThenTcp)));
        Assert.Equal(TcStolen, _programs.Tc.TestRun(Packets.Tcp(Local6, Remote6, ipv6Extensions: Packets.HopByHopThenTcp)).ReturnValue);
    }

    [RootTheory]
    [MemberData(nameof(IngressHooks))]
    public void Non_tcp_non_first_fragments_and_non_ip_frames_pass(IngressHook hook)
    {
        FreezeConnection(Local4, Remote4);
        Assert.False(_programs.IngressDrops(hook, Packets.Tcp(Remote4, Local4, protocol: 17))); // UDP with the same ports
        Assert.False(_programs.IngressDrops(hook, Packets.Tcp(Remote4, Local4, fragmentOffset: 185)));
        Assert.False(_programs.IngressDrops(hook, Packets.Arp()));
        Assert.Equal(TcOk, _programs.Tc.TestRun(Packets.Arp()).ReturnValue);
    }

    [RootTheory]
    [MemberData(nameof(IngressHooks))]
    public void A_frozen_packet_truncated_anywhere_before_its_ports_passes_and_after_them_drops(IngressHook hook)
    {
        FreezeConnection(Local4, Remote4);
        byte[] packet = Packets.Tcp(Remote4, Local4);
        int portsEnd = 14 + 20 + 4;
        for (int length = 14; length < packet.Length; length++)
        {
            if (hook == IngressHook.Tc && length < 14 + 20)
            {
                // The kernel builds no skb from an IP frame cut inside its fixed header, so TC never sees one.
                Assert.Throws<BpfException>(() => _programs.TcIngress.TestRun(packet.AsSpan(0, length)));
                continue;
            }
            // The program needs a whole TCP header (20 bytes) before it trusts the ports.
            Assert.False(_programs.IngressDrops(hook, packet.AsSpan(0, length)), $"a {length}-byte truncated frame was dropped (ports end at {portsEnd})");
        }
        Assert.True(_programs.IngressDrops(hook, packet));
    }

    [RootTheory]
    [MemberData(nameof(IngressHooks))]
    public void Frozen_endpoints_drop_exact_and_any_address_matches(IngressHook hook)
    {
        _programs.Endpoints.Update(new EndpointKey(IPEndPoint.Parse("0.0.0.0:9090")), new FreezeEntry());
        _programs.Endpoints.Update(new EndpointKey(IPEndPoint.Parse("[2001:db8::1]:9091")), new FreezeEntry());
        // Closed gate: the programs skip the endpoint lookups altogether.
        Assert.False(_programs.IngressDrops(hook, Packets.Tcp(Remote4, IPEndPoint.Parse("198.18.0.1:9090"))));
        FreezerMaps.OpenEndpointGate(_programs.Config);
        Assert.True(_programs.IngressDrops(hook, Packets.Tcp(Remote4, IPEndPoint.Parse("198.18.0.1:9090"))));
        Assert.Equal(TcStolen, _programs.Tc.TestRun(Packets.Tcp(IPEndPoint.Parse("198.18.0.9:9090"), Remote4)).ReturnValue);
        Assert.True(_programs.IngressDrops(hook, Packets.Tcp(Remote6, IPEndPoint.Parse("[2001:db8::1]:9091"))));
        Assert.False(_programs.IngressDrops(hook, Packets.Tcp(Remote6, IPEndPoint.Parse("[2001:db8::3]:9091"))));
        Assert.False(_programs.IngressDrops(hook, Packets.Tcp(Remote6, IPEndPoint.Parse("[2001:db8::1]:9090")))); // IPv4 any does not cover IPv6
    }

    [RootTheory]
    [MemberData(nameof(IngressHooks))]
    public void An_expired_lease_no_longer_drops(IngressHook hook)
    {
        FreezeConnection(Local4, Remote4, deadline: 1); // 1 ns after boot: long past
        Assert.False(_programs.IngressDrops(hook, Packets.Tcp(Remote4, Local4)));
        FreezeConnection(Local4, Remote4, deadline: ulong.MaxValue);
        Assert.True(_programs.IngressDrops(hook, Packets.Tcp(Remote4, Local4)));
    }

    [RootFact]
    public void Packets_carrying_the_criu_repair_mark_pass_tc_egress_and_tc_ingress()
    {
        FreezeConnection(Local4, Remote4);
        byte[] packet = Packets.Tcp(Local4, Remote4);
        Assert.Equal(TcOk, _programs.Tc.TestRun(packet, context: Packets.SkbContextWithMark(0xC114)).ReturnValue);
        Assert.Equal(TcStolen, _programs.Tc.TestRun(packet, context: Packets.SkbContextWithMark(0x1234)).ReturnValue);
        // CRIU's fake FIN (restoring a socket that had received one) comes in over loopback with the
        // mark: TC ingress, which loopback always uses, lets it through; any other mark is frozen.
        Assert.Equal(TcOk, _programs.TcIngress.TestRun(Packets.Tcp(Remote4, Local4), context: Packets.SkbContextWithMark(0xC114)).ReturnValue);
        Assert.Equal(TcShot, _programs.TcIngress.TestRun(Packets.Tcp(Remote4, Local4), context: Packets.SkbContextWithMark(0x1234)).ReturnValue);
    }

    // BPF_PROG_TEST_RUN builds a TC program's skb as if its data began with an Ethernet header
    // (eth_type_trans): skb->protocol comes from bytes 12-13, which in an IPv6 header are bytes 4-5 of
    // the source address. Addresses in 2001:db8:86dd::/48 put ETH_P_IPV6 there, so the run hands the L3
    // programs a frame that starts at the IP header with the skb->protocol an L3 device gives it. IPv4
    // cannot be run this way within the test ranges (198.18/15 puts 0xC612 there); L3FreezeTests covers
    // it over a real TUN device.
    private static readonly IPEndPoint L3Local6 = IPEndPoint.Parse("[2001:db8:86dd::1]:8080"), L3Remote6 = IPEndPoint.Parse("[2001:db8:86dd::2]:40000");

    /// <summary>The frame of an L3 device: the IP packet without its Ethernet header.</summary>
    private static byte[] IpOnly(byte[] ethernetFrame) => ethernetFrame[14..];

    [RootFact]
    public void L3_frames_that_start_at_the_ip_header_drop_both_ways_and_count_while_other_connections_pass()
    {
        FreezeConnection(L3Local6, L3Remote6);
        Assert.Equal(TcShot, _programs.L3Ingress.TestRun(IpOnly(Packets.Tcp(L3Remote6, L3Local6))).ReturnValue);
        Assert.Equal(TcStolen, _programs.L3Egress.TestRun(IpOnly(Packets.Tcp(L3Local6, L3Remote6))).ReturnValue);
        Assert.Equal(TcShot, _programs.L3Ingress.TestRun(IpOnly(Packets.Tcp(L3Remote6, L3Local6, ipv6Extensions: Packets.HopByHopThenTcp))).ReturnValue);
        Assert.True(_programs.Connections.TryLookup(new ConnectionKey(L3Local6, L3Remote6), out FreezeEntry entry));
        Assert.Equal(3UL, entry.Dropped);

        var otherPort = new IPEndPoint(L3Remote6.Address, 40001);
        Assert.Equal(TcOk, _programs.L3Ingress.TestRun(IpOnly(Packets.Tcp(otherPort, L3Local6))).ReturnValue);
        Assert.Equal(TcOk, _programs.L3Egress.TestRun(IpOnly(Packets.Tcp(L3Local6, otherPort))).ReturnValue);
        Assert.Equal(TcOk, _programs.L3Ingress.TestRun(IpOnly(Packets.Tcp(L3Remote6, L3Local6, protocol: 17))).ReturnValue); // UDP, same ports
        // The same exemption for CRIU's repair-mode sockets as on Ethernet egress.
        Assert.Equal(TcOk, _programs.L3Egress.TestRun(IpOnly(Packets.Tcp(L3Local6, L3Remote6)), context: Packets.SkbContextWithMark(0xC114)).ReturnValue);
    }

    public void Dispose() => _programs.Dispose();
}
