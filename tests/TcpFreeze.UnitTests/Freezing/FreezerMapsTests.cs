using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>The companion maps of a frozen set (replay records, the endpoint gate, the counters), over in-memory maps.</summary>
public sealed class FreezerMapsTests
{
    private static ConnectionKey Key(int n) => ConnectionKey.Parse($"198.18.0.1:{1000 + n}", "198.18.0.2:80");

    private sealed class Maps
    {
        public InMemoryMap<ConnectionKey, FreezeEntry> Connections { get; } = new(8, id: 11);
        public InMemoryMap<EndpointKey, FreezeEntry> Endpoints { get; } = new(8);
        public InMemoryMap<uint, ulong> Counters { get; } = new(4);
        public InMemoryMap<uint, ulong> Config { get; } = new(1);
        public InMemoryMap<ConnectionKey, ReplayRecord> Replay { get; } = new(8);
        public InMemoryMap<ConnectionKey, ReplayRecord> LocalReplay { get; } = new(8);

        public FreezerMaps Open() => new(Connections, Endpoints, Counters, Config, Replay, LocalReplay);
    }

    [Fact]
    public void A_thaw_takes_the_wanted_replay_records_and_deletes_both_directions()
    {
        var maps = new Maps();
        maps.Replay.Update(Key(0), new ReplayRecord { RecordedNs = 1 });
        maps.Replay.Update(Key(1), new ReplayRecord { RecordedNs = 2 });
        maps.LocalReplay.Update(Key(1), new ReplayRecord { RecordedNs = 3 });
        using FreezerMaps opened = maps.Open();

        TakenReplays taken = opened.TakeReplays([Key(0), Key(1)], key => key == Key(1));

        Assert.Equal([Key(1)], taken.Peer.Keys);
        Assert.Equal(2UL, taken.Peer[Key(1)].RecordedNs);
        Assert.Equal([Key(1)], taken.Local.Keys);
        Assert.True(maps.Replay.IsEmpty());
        Assert.True(maps.LocalReplay.IsEmpty());
    }

    [Fact]
    public void The_endpoint_gate_closes_only_when_no_endpoint_is_frozen()
    {
        var maps = new Maps();
        using FreezerMaps opened = maps.Open();
        opened.OpenEndpointGate();
        maps.Endpoints.Update(EndpointKey.Parse("198.18.0.1:80"), new FreezeEntry());

        opened.CloseEndpointGateIfEmpty();
        Assert.Equal(1UL, maps.Config.Elements[0]);

        maps.Endpoints.DeletePresent([EndpointKey.Parse("198.18.0.1:80")]);
        opened.CloseEndpointGateIfEmpty();
        Assert.Equal(0UL, maps.Config.Elements[0]);
    }

    [Fact]
    public void Statistics_sum_each_counter_over_cpus_and_count_ended_leases_apart()
    {
        var maps = new Maps();
        for (uint index = 0; index < 4; index++)
            maps.Counters.PerCpu[index] = [index + 1, 10 * (index + 1)];
        maps.Connections.Update(Key(0), new FreezeEntry());
        maps.Connections.Update(Key(1), new FreezeEntry { DeadlineNs = 1 });
        maps.Endpoints.Update(EndpointKey.Parse("198.18.0.1:80"), new FreezeEntry { DeadlineNs = 1 });
        using FreezerMaps opened = maps.Open();

        FreezerStatistics stats = opened.ReadStatistics();

        Assert.Equal((11UL, 22UL, 33UL, 44UL), (stats.TcpPacketsSeen, stats.DroppedIngress, stats.DroppedEgress, stats.Passed));
        Assert.Equal((1, 1, 0, 1, 8u), (stats.FrozenConnections, stats.ExpiredConnections, stats.FrozenEndpoints, stats.ExpiredEndpoints, stats.ConnectionCapacity));
        Assert.Equal(1, opened.CountFrozen(endpoints: false));
        Assert.Equal(11u, opened.Connections.MapId);
    }

    [Fact]
    public void A_freeze_whose_connections_fail_leaves_no_endpoint_frozen()
    {
        var maps = new Maps();
        var kept = EndpointKey.Parse("198.18.0.1:443");
        maps.Endpoints.Update(kept, new FreezeEntry { Dropped = 3 });
        maps.Connections.FailBatchWith = TcpFreeze.Native.Errnos.ENOMEM;
        using FreezerMaps opened = maps.Open();

        Assert.Throws<TcpFreezeException>(() => opened.Insert([Key(0), Key(1)], [EndpointKey.Parse("198.18.0.1:80"), kept], 0, 1, FreezeTiming.Now));

        Assert.Equal([kept], maps.Endpoints.Elements.Keys);
        Assert.Equal(3UL, maps.Endpoints.Elements[kept].Dropped);
        Assert.True(maps.Connections.IsEmpty());
    }

    [Fact]
    public void A_new_connection_starts_without_the_replay_record_an_earlier_freeze_left()
    {
        var maps = new Maps();
        maps.Replay.Update(Key(0), new ReplayRecord { RecordedNs = 1 });
        maps.LocalReplay.Update(Key(0), new ReplayRecord { RecordedNs = 1 });
        maps.Replay.Update(Key(1), new ReplayRecord { RecordedNs = 2 });
        maps.Connections.Update(Key(1), new FreezeEntry());
        using FreezerMaps opened = maps.Open();

        var (connections, endpoints) = opened.Insert([Key(0), Key(1)], [], 0, 1, FreezeTiming.Now);

        Assert.Equal([Key(0)], connections.Created);
        Assert.Empty(endpoints.Created);
        Assert.Equal([Key(1)], maps.Replay.Elements.Keys); // still frozen: its record is current
        Assert.True(maps.LocalReplay.IsEmpty());
        Assert.False(maps.Config.TryLookup(0, out _)); // no endpoint: the gate was not touched
    }

    [Fact]
    public void Disposing_the_maps_releases_every_one_of_them()
    {
        var maps = new Maps();
        maps.Open().Dispose();
        Assert.True(new[] { maps.Connections.Disposed, maps.Endpoints.Disposed, maps.Counters.Disposed, maps.Config.Disposed, maps.Replay.Disposed, maps.LocalReplay.Disposed }.All(d => d));
    }
}
