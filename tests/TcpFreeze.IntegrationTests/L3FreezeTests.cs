using System.Net;
using System.Net.Sockets;
using TcpFreeze.Ebpf.Interop;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// Freezing real TCP connections that run over a point-to-point (L3) device: two
/// namespaces of the test's own joined only by TUN devices (ARPHRD_NONE, no Ethernet
/// header, as VPNs and WireGuard), so every segment of the connection crosses an L3 device.
/// </summary>
[Trait("Privileges", "root")]
public sealed class L3FreezeTests
{
    public static TheoryData<AddressFamily, IngressHook> FamiliesAndHooks => new()
    {
        { AddressFamily.InterNetwork, IngressHook.Xdp },
        { AddressFamily.InterNetworkV6, IngressHook.Xdp },
        { AddressFamily.InterNetwork, IngressHook.Tc },
    };

    [RootTheory]
    [MemberData(nameof(FamiliesAndHooks))]
    public void Over_a_tun_device_a_frozen_connection_is_silent_both_ways_and_delivers_every_byte_in_order_after_thaw(AddressFamily family, IngressHook hook)
    {
        using var network = TunNetwork.Create();
        using var pins = new PinRoot();
        using var frozen = TcpPair.Open(network.A, network.B, new IPEndPoint(network.AddressB(family), 8080));
        using var bystander = TcpPair.Open(network.A, network.B, new IPEndPoint(network.AddressB(family), 8081));
        FreezerOptions options = pins.Options(network.B) with { IngressHook = hook };
        try
        {
            using (TcpFreezer freezer = TcpFreezer.Attach(options))
            {
                // The TUN device gets the L3 programs on both TC hooks, whichever ingress hook was asked for (XDP cannot parse it).
                AttachedInterface tun = Assert.Single(freezer.AttachedInterfaces, i => i.Name == network.Device);
                Assert.True(tun.Layer3);
                Assert.Equal(IngressHook.Tc, tun.IngressHook);
                Assert.Equal(0u, network.B.Run(() => Xdp.Query(tun.Index).ProgramId));
                FreezeTests.AssertFrozenIsSilentAndThawDeliversEverything(freezer, frozen, bystander);
            }

            DetachResult detached = TcpFreezer.Detach(options);
            Assert.Contains(network.Device, detached.Interfaces);
            KernelState.AssertNothingLeft(network.B, options);
            TcpPair.AssertRoundTrip(frozen.Client, frozen.Server, "after the detach");
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }

    [RootFact]
    public void A_tun_device_that_comes_up_after_the_attach_is_covered_by_the_next_freeze_which_names_it()
    {
        using var network = TunNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B);
        // IPv4: taking a device down flushes its IPv6 addresses, not its IPv4 ones.
        var endpoint = new IPEndPoint(network.AddressB(AddressFamily.InterNetwork), 8080);
        try
        {
            Run.Checked("ip", "-n", network.NameB, "link", "set", network.Device, "down");
            using TcpFreezer freezer = TcpFreezer.Attach(options);
            Assert.DoesNotContain(freezer.AttachedInterfaces, i => i.Name == network.Device);
            Run.Checked("ip", "-n", network.NameB, "link", "set", network.Device, "up");

            using var frozen = TcpPair.Open(network.A, network.B, endpoint);
            using var bystander = TcpPair.Open(network.A, network.B, new IPEndPoint(endpoint.Address, 8081));
            FreezeResult result = freezer.Freeze([frozen.ServerView]);
            Assert.Equal([network.Device], result.InterfacesAttached);
            freezer.Thaw([frozen.ServerView]);
            FreezeTests.AssertFrozenIsSilentAndThawDeliversEverything(freezer, frozen, bystander);
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }
}
