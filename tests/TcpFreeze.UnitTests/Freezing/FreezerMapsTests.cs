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
    public void A_thaw_for_the_kick_returns_the_released_entries_with_only_their_current_freezes_records_and_deletes_every_record()
    {
        var maps = new Maps();
        var endpoint = EndpointKey.Parse("198.18.0.1:80");
        maps.Connections.Update(Key(0), new FreezeEntry { FirstDropNs = 100 });           // held: released, record current
        maps.Connections.Update(Key(1), new FreezeEntry { FirstDropNs = 100 });           // held: released, record older than its freeze
        maps.Connections.Update(Key(2), new FreezeEntry { FirstDropNs = 100, DeadlineNs = 1 }); // lease ended: thawed, not released
        maps.Replay.Update(Key(0), new ReplayRecord { RecordedNs = 150 });
        maps.LocalReplay.Update(Key(0), new ReplayRecord { RecordedNs = 160 });
        maps.Replay.Update(Key(1), new ReplayRecord { RecordedNs = 50 });
        maps.Replay.Update(Key(2), new ReplayRecord { RecordedNs = 150 });
        maps.Endpoints.Update(endpoint, new FreezeEntry());
        maps.Config.Update(0, 1UL);
        using FreezerMaps opened = maps.Open();

        Thawing thawing = opened.Thaw([Key(0), Key(1), Key(2), Key(3)], [endpoint, EndpointKey.Parse("198.18.0.1:443")], forKick: true);

        Assert.Equal((3, 1), (thawing.Connections, thawing.Endpoints));
        Assert.Equal([Key(3)], thawing.MissingConnections);
        Assert.Equal([EndpointKey.Parse("198.18.0.1:443")], thawing.MissingEndpoints);
        Assert.Equal([Key(0), Key(1)], thawing.Released.Select(r => r.Key).ToHashSet());
        Assert.Equal([Key(0)], thawing.Replays.Peer.Keys);
        Assert.Equal([Key(0)], thawing.Replays.Local.Keys);
        Assert.True(maps.Connections.IsEmpty() && maps.Endpoints.IsEmpty() && maps.Replay.IsEmpty() && maps.LocalReplay.IsEmpty());
        Assert.Equal(0UL, maps.Config.Elements[0]); // the last endpoint went: the gate closed
        ThawResult result = thawing.ToResult();
        Assert.Equal((3, 1), (result.ConnectionsThawed, result.EndpointsThawed));
        Assert.Equal([Key(3)], result.NotFrozenConnections);
        Assert.Equal([EndpointKey.Parse("198.18.0.1:443")], result.NotFrozenEndpoints);
    }

    [Fact]
    public void A_thaw_without_the_kick_returns_nothing_to_send_and_still_deletes_the_records()
    {
        var maps = new Maps();
        maps.Connections.Update(Key(0), new FreezeEntry { FirstDropNs = 100 });
        maps.Replay.Update(Key(0), new ReplayRecord { RecordedNs = 150 });
        using FreezerMaps opened = maps.Open();

        Thawing thawing = opened.Thaw([Key(0)], [], forKick: false);

        Assert.Equal(1, thawing.Connections);
        Assert.Empty(thawing.Released);
        Assert.Empty(thawing.Replays.Peer);
        Assert.True(maps.Connections.IsEmpty() && maps.Replay.IsEmpty());
        Assert.False(maps.Config.TryLookup(0, out _)); // no endpoint thawed: the gate was not touched
    }

    [Fact]
    public void A_held_kicks_thaw_leaves_the_records_it_took_for_later_and_names_them()
    {
        var maps = new Maps();
        maps.Connections.Update(Key(0), new FreezeEntry { FirstDropNs = 100 });
        maps.Connections.Update(Key(1), new FreezeEntry { FirstDropNs = 100 });
        maps.Replay.Update(Key(0), new ReplayRecord { RecordedNs = 150 });
        maps.Replay.Update(Key(1), new ReplayRecord { RecordedNs = 50 });
        using FreezerMaps opened = maps.Open();

        Thawing thawing = opened.Thaw([Key(0), Key(1)], [], forKick: true, deferReplayDelete: true);

        Assert.Equal([Key(0)], thawing.Replays.Peer.Keys);
        Assert.Equal([Key(0), Key(1)], thawing.Replays.PeerUndeleted.ToHashSet());
        Assert.Equal([Key(0), Key(1)], maps.Replay.Elements.Keys.ToHashSet());
        Assert.True(maps.Connections.IsEmpty());
    }

    [Fact]
    public void Thawing_everything_leaves_no_entry_no_record_and_a_closed_gate()
    {
        var maps = new Maps();
        maps.Connections.Update(Key(0), new FreezeEntry { FirstDropNs = 100 });
        maps.Replay.Update(Key(0), new ReplayRecord { RecordedNs = 150 });
        maps.Replay.Update(Key(5), new ReplayRecord { RecordedNs = 150 });      // its entry already gone (an ended lease swept)
        maps.LocalReplay.Update(Key(6), new ReplayRecord { RecordedNs = 150 });
        maps.Endpoints.Update(EndpointKey.Parse("198.18.0.1:80"), new FreezeEntry());
        maps.Config.Update(0, 1UL);
        using FreezerMaps opened = maps.Open();

        Thawing thawing = opened.ThawAll(forKick: true);

        Assert.Equal((1, 1), (thawing.Connections, thawing.Endpoints));
        Assert.Equal([Key(0)], thawing.Released.Select(r => r.Key));
        Assert.Equal([Key(0)], thawing.Replays.Peer.Keys);
        Assert.True(maps.Connections.IsEmpty() && maps.Endpoints.IsEmpty() && maps.Replay.IsEmpty() && maps.LocalReplay.IsEmpty());
        Assert.Equal(0UL, maps.Config.Elements[0]);
    }

    [Fact]
    public void Disposing_the_maps_releases_every_one_of_them()
    {
        var maps = new Maps();
        maps.Open().Dispose();
        Assert.True(new[] { maps.Connections.Disposed, maps.Endpoints.Disposed, maps.Counters.Disposed, maps.Config.Disposed, maps.Replay.Disposed, maps.LocalReplay.Disposed }.All(d => d));
    }
}
