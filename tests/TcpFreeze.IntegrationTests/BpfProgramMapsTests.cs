using TcpFreeze.Ebpf.Interop;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>A program's maps reached through the kernel's program info, as recovery without pins does.</summary>
[Trait("Privileges", "root")]
public sealed class BpfProgramMapsTests
{
    [RootFact]
    public void A_program_lists_the_maps_it_uses_and_each_opens_by_id()
    {
        using var programs = new PrivateTcpFreezePrograms("tf_map_ids", 64);
        uint[] ids = programs.Xdp.GetMapIds();
        Assert.Contains(programs.Connections.Info.Id, ids);
        Assert.Contains(programs.Endpoints.Info.Id, ids);
        Assert.Contains(programs.Config.Info.Id, ids);

        using BpfMap? connections = BpfMap.TryOpenById(programs.Connections.Info.Id);
        Assert.NotNull(connections);
        Assert.Equal("tf_connections", connections.Info.Name);
        Assert.Equal(64u, connections.Info.MaxEntries);
        // The same map, not a copy: an entry written through one descriptor is seen through the other.
        var key = ConnectionKey.Parse("198.18.0.1:1000", "198.18.0.2:2000");
        programs.Connections.Update(key, new FreezeEntry());
        Assert.True(connections.As<ConnectionKey, FreezeEntry>().TryLookup(key, out FreezeEntry _));
    }

    [RootFact]
    public void A_map_id_that_does_not_exist_opens_as_null()
    {
        Assert.Null(BpfMap.TryOpenById(uint.MaxValue));
    }
}
