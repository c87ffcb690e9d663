using System.Net;
using Ebpf.Interop;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// The kernel programs' verdicts on crafted packets, run in the kernel with
/// BPF_PROG_TEST_RUN against a privately loaded (unpinned, unattached) object.
/// </summary>
[Trait("Privileges", "root")]
public sealed class PacketPathTests : IDisposable
{
    private const uint XdpDrop = 1, XdpPass = 2, TcOk = 0, TcShot = 2;
    private readonly PrivateTcpFreezePrograms _programs = new("tcpfreeze-packet-tests", 64);

    private static readonly IPEndPoint Local4 = IPEndPoint.Parse("198.18.0.1:8080"), Remote4 = IPEndPoint.Parse("198.18.0.2:40000");
    private static readonly IPEndPoint Local6 = IPEndPoint.Parse("[2001:db8::1]:8080"), Remote6 = IPEndPoint.Parse("[2001:db8::2]:40000");


    private void FreezeConnection(IPEndPoint local, IPEndPoint remote, ulong deadline = 0)
        => _programs.Connections.Update(new ConnectionKey(local, remote), new FreezeEntry { DeadlineNs = deadline });

    [RootFact]
    public void Frozen_ipv4_and_ipv6_connections_drop_both_ways_and_count_their_drops()
    {
        FreezeConnection(Local4, Remote4);
        FreezeConnection(Local6, Remote6);
        Assert.Equal(XdpDrop, _programs.Xdp.TestRun(Packets.Tcp(Remote4, Local4)).ReturnValue);
        Assert.Equal(TcShot, _programs.Tc.TestRun(Packets.Tcp(Local4, Remote4)).ReturnValue);
        Assert.Equal(XdpDrop, _programs.Xdp.TestRun(Packets.Tcp(Remote6, Local6)).ReturnValue);
        Assert.Equal(TcShot, _programs.Tc.TestRun(Packets.Tcp(Local6, Remote6)).ReturnValue);
        Assert.True(_programs.Connections.TryLookup(new ConnectionKey(Local4, Remote4), out FreezeEntry entry));
        Assert.Equal(2UL, entry.Dropped);
    }

    [RootFact]
    public void Packets_of_other_connections_pass()
    {
        FreezeConnection(Local4, Remote4);
        var otherPort = new IPEndPoint(Remote4.Address, 40001);
        Assert.Equal(XdpPass, _programs.Xdp.TestRun(Packets.Tcp(otherPort, Local4)).ReturnValue);
        Assert.Equal(TcOk, _programs.Tc.TestRun(Packets.Tcp(Local4, otherPort)).ReturnValue);
        // The frozen tuple in the wrong orientation (local as source on ingress) is another connection.
        Assert.Equal(XdpPass, _programs.Xdp.TestRun(Packets.Tcp(Local4, Remote4)).ReturnValue);
        Assert.Equal(TcOk, _programs.Tc.TestRun(Packets.Tcp(Remote4, Local4)).ReturnValue);
    }

    [RootFact]
    public void Ipv4_options_vlan_tags_and_ipv6_extension_headers_are_parsed()
    {
        FreezeConnection(Local4, Remote4);
        FreezeConnection(Local6, Remote6);
        Assert.Equal(XdpDrop, _programs.Xdp.TestRun(Packets.Tcp(Remote4, Local4, ipv4OptionBytes: 40)).ReturnValue);
        Assert.Equal(XdpDrop, _programs.Xdp.TestRun(Packets.Tcp(Remote4, Local4, vlanTags: 1)).ReturnValue);
        Assert.Equal(XdpDrop, _programs.Xdp.TestRun(Packets.Tcp(Remote4, Local4, vlanTags: 2)).ReturnValue);
        Assert.Equal(XdpDrop, _programs.Xdp.TestRun(Packets.Tcp(Remote6, Local6, ipv6Extensions: Packets.HopByHopThenTcp)).ReturnValue);
        Assert.Equal(TcShot, _programs.Tc.TestRun(Packets.Tcp(Local6, Remote6, ipv6Extensions: Packets.HopByHopThenTcp)).ReturnValue);
    }

    [RootFact]
    public void Non_tcp_non_first_fragments_and_non_ip_frames_pass()
    {
        FreezeConnection(Local4, Remote4);
        Assert.Equal(XdpPass, _programs.Xdp.TestRun(Packets.Tcp(Remote4, Local4, protocol: 17)).ReturnValue); // UDP with the same ports
        Assert.Equal(XdpPass, _programs.Xdp.TestRun(Packets.Tcp(Remote4, Local4, fragmentOffset: 185)).ReturnValue);
        Assert.Equal(XdpPass, _programs.Xdp.TestRun(Packets.Arp()).ReturnValue);
        Assert.Equal(TcOk, _programs.Tc.TestRun(Packets.Arp()).ReturnValue);
    }

    [RootFact]
    public void A_frozen_packet_truncated_anywhere_before_its_ports_passes_and_after_them_drops()
    {
        FreezeConnection(Local4, Remote4);
        byte[] packet = Packets.Tcp(Remote4, Local4);
        int portsEnd = 14 + 20 + 4;
        for (int length = 14; length < packet.Length; length++)
        {
            uint verdict = _programs.Xdp.TestRun(packet.AsSpan(0, length)).ReturnValue;
            // The program needs a whole TCP header (20 bytes) before it trusts the ports.
            Assert.True(verdict == XdpPass, $"a {length}-byte truncated frame was dropped (ports end at {portsEnd})");
        }
        Assert.Equal(XdpDrop, _programs.Xdp.TestRun(packet).ReturnValue);
    }

    [RootFact]
    public void Frozen_endpoints_drop_exact_and_any_address_matches()
    {
        _programs.Endpoints.Update(new EndpointKey(IPEndPoint.Parse("0.0.0.0:9090")), new FreezeEntry());
        _programs.Endpoints.Update(new EndpointKey(IPEndPoint.Parse("[2001:db8::1]:9091")), new FreezeEntry());
        // Closed gate: the programs skip the endpoint lookups altogether.
        Assert.Equal(XdpPass, _programs.Xdp.TestRun(Packets.Tcp(Remote4, IPEndPoint.Parse("198.18.0.1:9090"))).ReturnValue);
        EndpointGate.Open(_programs.Config);
        Assert.Equal(XdpDrop, _programs.Xdp.TestRun(Packets.Tcp(Remote4, IPEndPoint.Parse("198.18.0.1:9090"))).ReturnValue);
        Assert.Equal(TcShot, _programs.Tc.TestRun(Packets.Tcp(IPEndPoint.Parse("198.18.0.9:9090"), Remote4)).ReturnValue);
        Assert.Equal(XdpDrop, _programs.Xdp.TestRun(Packets.Tcp(Remote6, IPEndPoint.Parse("[2001:db8::1]:9091"))).ReturnValue);
        Assert.Equal(XdpPass, _programs.Xdp.TestRun(Packets.Tcp(Remote6, IPEndPoint.Parse("[2001:db8::3]:9091"))).ReturnValue);
        Assert.Equal(XdpPass, _programs.Xdp.TestRun(Packets.Tcp(Remote6, IPEndPoint.Parse("[2001:db8::1]:9090"))).ReturnValue); // IPv4 any does not cover IPv6
    }

    [RootFact]
    public void An_expired_lease_no_longer_drops()
    {
        FreezeConnection(Local4, Remote4, deadline: 1); // 1 ns after boot: long past
        Assert.Equal(XdpPass, _programs.Xdp.TestRun(Packets.Tcp(Remote4, Local4)).ReturnValue);
        FreezeConnection(Local4, Remote4, deadline: ulong.MaxValue);
        Assert.Equal(XdpDrop, _programs.Xdp.TestRun(Packets.Tcp(Remote4, Local4)).ReturnValue);
    }

    [RootFact]
    public void Egress_packets_carrying_the_criu_repair_mark_pass()
    {
        FreezeConnection(Local4, Remote4);
        byte[] packet = Packets.Tcp(Local4, Remote4);
        Assert.Equal(TcOk, _programs.Tc.TestRun(packet, context: Packets.SkbContextWithMark(0xC114)).ReturnValue);
        Assert.Equal(TcShot, _programs.Tc.TestRun(packet, context: Packets.SkbContextWithMark(0x1234)).ReturnValue);
    }

    public void Dispose() => _programs.Dispose();
}
