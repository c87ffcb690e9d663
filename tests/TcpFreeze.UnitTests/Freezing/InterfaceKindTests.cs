extern alias TcpFreezeAssembly;

using System.Runtime.CompilerServices;
using Libc = TcpFreezeAssembly::Interop.Libc;

namespace TcpFreeze.Tests;

/// <summary>Which interfaces a freeze covers, and how, by their ARPHRD_* type (linux/if_arp.h).</summary>
public class InterfaceKindTests
{
    private static NetworkInterfaceInfo Nic(int type) => new("x", 2, IsUp: true, type);

    [Theory]
    [InlineData(0xFFFE)] // NONE: tun, WireGuard
    [InlineData(512)]    // PPP
    [InlineData(519)]    // RAWIP
    [InlineData(768)]    // TUNNEL: ipip
    [InlineData(769)]    // TUNNEL6
    [InlineData(776)]    // SIT
    [InlineData(778)]    // IPGRE
    [InlineData(823)]    // IP6GRE
    public void Point_to_point_devices_are_covered_by_the_l3_programs(int type)
    {
        Assert.True(Nic(type).IsLayer3);
        Assert.True(Nic(type).IsSupported);
        Assert.False(Nic(type).NeverCarriesIp);
    }

    [Theory]
    [InlineData(NetworkInterfaceInfo.Ethernet)]
    [InlineData(NetworkInterfaceInfo.Loopback)]
    public void Ethernet_and_loopback_are_covered_by_the_ethernet_programs(int type)
    {
        Assert.False(Nic(type).IsLayer3);
        Assert.True(Nic(type).IsSupported);
    }

    [Theory]
    [InlineData(280)] // CAN
    [InlineData(824)] // nlmon
    public void Devices_that_never_carry_ip_are_left_out(int type) => Assert.True(Nic(type).NeverCarriesIp);

    [Fact]
    public void An_ip_capable_device_the_programs_cannot_parse_is_neither_supported_nor_left_out()
    {
        NetworkInterfaceInfo infiniband = Nic(32);
        Assert.False(infiniband.IsSupported);
        Assert.False(infiniband.NeverCarriesIp);
    }

    [Fact]
    public unsafe void Struct_ifreq_is_40_bytes_with_its_union_at_16()
    {
        Assert.Equal(40, Unsafe.SizeOf<Libc.IfReq>());
        Libc.IfReq request = default;
        Assert.Equal(16, (int)((byte*)&request.IfIndex - (byte*)&request));
        Assert.Equal(16, (int)((byte*)&request.HardwareFamily - (byte*)&request));
    }
}
