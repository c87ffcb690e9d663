using Interop;
using TcpFreeze.Ebpf.Interop;

namespace TcpFreeze;

/// <summary>
/// The maps of one namespace's frozen set, opened and typed: the two
/// <see cref="FrozenSet{TKey}"/>s, the per-CPU packet counters, the config flags and the
/// peers' segments kept for the replay.
/// Owns their descriptors (the pins keep the maps alive).
/// </summary>
internal sealed class FreezerMaps : IDisposable
{
    private readonly IKeyValueMap<uint, ulong> _counters;
    private readonly IKeyValueMap<uint, ulong> _config;

    /// <param name="maps">The map of every row of <see cref="KernelObjects.Maps"/>; owned from now on.</param>
    public FreezerMaps(IReadOnlyDictionary<MapDefinition, BpfMap> maps)
        : this(Kernel<ConnectionKey, FreezeEntry>(maps, KernelObjects.Connections), Kernel<EndpointKey, FreezeEntry>(maps, KernelObjects.Endpoints),
            Kernel<uint, ulong>(maps, KernelObjects.Counters), Kernel<uint, ulong>(maps, KernelObjects.Config),
            Kernel<ConnectionKey, ReplayRecord>(maps, KernelObjects.Replay), Kernel<ConnectionKey, ReplayRecord>(maps, KernelObjects.LocalReplay))
    {
    }

    /// <summary>Over any <see cref="IKeyValueMap{TKey, TValue}"/> (the unit tests' in-memory maps); owns them from now on.</summary>
    internal FreezerMaps(IKeyValueMap<ConnectionKey, FreezeEntry> connections, IKeyValueMap<EndpointKey, FreezeEntry> endpoints,
        IKeyValueMap<uint, ulong> counters, IKeyValueMap<uint, ulong> config,
        IKeyValueMap<ConnectionKey, ReplayRecord> replay, IKeyValueMap<ConnectionKey, ReplayRecord> localReplay)
    {
        Connections = new FrozenSet<ConnectionKey>(connections, KernelObjects.Connections.PinName);
        Endpoints = new FrozenSet<EndpointKey>(endpoints, KernelObjects.Endpoints.PinName);
        _counters = counters;
        _config = config;
        Replay = replay;
        LocalReplay = localReplay;
    }

    private static KernelMap<TKey, TValue> Kernel<TKey, TValue>(IReadOnlyDictionary<MapDefinition, BpfMap> maps, MapDefinition definition)
        where TKey : unmanaged where TValue : unmanaged
        => maps.TryGetValue(definition, out BpfMap? map)
            ? new KernelMap<TKey, TValue>(map)
            : throw new ArgumentException($"no '{definition.MapName}' map among the {maps.Count} given", nameof(maps));

    /// <summary>The peer's last dropped data segment per connection (see <see cref="ReplayRecord"/>).</summary>
    public IKeyValueMap<ConnectionKey, ReplayRecord> Replay { get; }

    /// <summary>This host's own last dropped data segment per connection (tf_replay_local), sent to the peer at the thaw.</summary>
    public IKeyValueMap<ConnectionKey, ReplayRecord> LocalReplay { get; }

    /// <summary>
    /// Freezes endpoints and connections as one transaction (under the caller's pin lock): the
    /// endpoint gate opened first when endpoints come, the endpoints inserted, then the
    /// connections; when the connections fail the endpoints' insertion is rolled back, so a
    /// refused freeze leaves both sets as they were (see <see cref="FrozenSet{TKey}.Insert"/>).
    /// New connections start without a replay record (one left by an expired lease is stale).
    /// </summary>
    public (FrozenSet<ConnectionKey>.Insertion Connections, FrozenSet<EndpointKey>.Insertion Endpoints) Insert(
        ConnectionKey[] connectionKeys, EndpointKey[] endpointKeys, ulong deadline, ulong now, FreezeTiming timing)
    {
        if (endpointKeys.Length > 0)
            OpenEndpointGate();
        FrozenSet<EndpointKey>.Insertion endpointInsert = Endpoints.Insert(endpointKeys, deadline, now, timing);
        FrozenSet<ConnectionKey>.Insertion connectionInsert;
        try
        {
            connectionInsert = Connections.Insert(connectionKeys, deadline, now, timing);
            // A new freeze starts without a replay record (one left by an expired lease is stale).
            if (connectionInsert.Created.Count > 0)
                DeleteReplays(connectionInsert.Created.ToArray());
        }
        catch
        {
            endpointInsert.RollBack();
            throw;
        }
        return (connectionInsert, endpointInsert);
    }

    /// <summary>
    /// Thaws <paramref name="connectionKeys"/> and <paramref name="endpointKeys"/> (under the caller's pin lock), the
    /// counterpart of <see cref="Insert"/>. With <paramref name="forKick"/> the released connections' entries are
    /// returned with the replay records of the freeze being released (a record older than that freeze's first drop
    /// is stale and goes unreturned); without it the entries are just deleted. Every thawed key's replay records are
    /// deleted either way, unless <paramref name="deferReplayDelete"/> leaves the returned ones for
    /// <see cref="DeleteTaken"/>. The endpoint gate closes once no endpoint is left.
    /// </summary>
    public Thawing Thaw(ConnectionKey[] connectionKeys, EndpointKey[] endpointKeys, bool forKick, bool deferReplayDelete = false)
    {
        var missingConnections = new List<ConnectionKey>();
        var missingEndpoints = new List<EndpointKey>();
        var released = new List<(ConnectionKey Key, FreezeEntry Entry)>();
        int connections = forKick
            ? Connections.Release(connectionKeys, missingConnections, released)
            : Connections.DeletePresent(connectionKeys, missingConnections);
        TakenReplays replays = TakeReleasedReplays(connectionKeys, released, deferReplayDelete);
        int endpoints = Endpoints.DeletePresent(endpointKeys, missingEndpoints);
        if (endpoints > 0)
            CloseEndpointGateIfEmpty();
        return new Thawing(connections, endpoints, missingConnections, missingEndpoints, released, replays);
    }

    /// <summary>
    /// Thaws everything (under the caller's pin lock, when there is one), as <see cref="Thaw"/> does, and leaves no
    /// replay record behind, not even one of a key whose lease had ended.
    /// </summary>
    public Thawing ThawAll(bool forKick)
    {
        var released = new List<(ConnectionKey Key, FreezeEntry Entry)>();
        ConnectionKey[] all = Connections.ReadAll().Select(e => e.Key).ToArray();
        int connections = forKick ? Connections.Release(all, [], released) : Connections.DeletePresent(all);
        TakenReplays replays = TakeReleasedReplays([.. all.Union(Replay.GetKeys()).Union(LocalReplay.GetKeys())], released);
        int endpoints = Endpoints.DeletePresent(Endpoints.ReadAll().Select(e => e.Key).ToArray());
        CloseEndpointGateIfEmpty();
        return new Thawing(connections, endpoints, [], [], released, replays);
    }

    /// <summary>
    /// Deletes the replay records of thawed <paramref name="keys"/> and returns those of the connections
    /// <paramref name="released"/> (empty when the kick is off) that were recorded during the freeze being released,
    /// not before it.
    /// </summary>
    private TakenReplays TakeReleasedReplays(ConnectionKey[] keys, List<(ConnectionKey Key, FreezeEntry Entry)> released, bool deferDelete = false)
    {
        if (released.Count == 0)
            return TakeReplays(keys, _ => false);
        Dictionary<ConnectionKey, FreezeEntry> entries = released.ToDictionary(r => r.Key, r => r.Entry);
        TakenReplays taken = TakeReplays(keys, entries.ContainsKey, deferDelete);
        foreach (Dictionary<ConnectionKey, KeptSegment> records in new[] { taken.Peer, taken.Local })
            foreach ((ConnectionKey key, KeptSegment record) in records.ToArray())
                if (!IsOfFreeze(entries[key], record.RecordedNs))
                    records.Remove(key);
        return taken;
    }

    /// <summary>Whether a replay record taken at <paramref name="recordedNs"/> belongs to the freeze <paramref name="entry"/> holds.</summary>
    public static bool IsOfFreeze(FreezeEntry entry, ulong recordedNs) => entry.FirstDropNs != 0 && recordedNs >= entry.FirstDropNs;

    /// <summary>
    /// Deletes the replay records of <paramref name="keys"/>, both directions, and returns those
    /// of them that <paramref name="wanted"/> says to keep. Called under the pin lock by every
    /// thaw, so a record never outlives its freeze (a later freeze of the same key starts without one).
    /// With <paramref name="deferDelete"/> the records stay, and the result names them for
    /// <see cref="DeleteTaken"/> (the agent's held kick, after CRIU has its answer).
    /// </summary>
    public TakenReplays TakeReplays(ConnectionKey[] keys, Func<ConnectionKey, bool> wanted, bool deferDelete = false)
    {
        (Dictionary<ConnectionKey, KeptSegment> peer, ConnectionKey[] peerPresent) = Take(Replay, keys, wanted, deferDelete);
        (Dictionary<ConnectionKey, KeptSegment> local, ConnectionKey[] localPresent) = Take(LocalReplay, keys, wanted, deferDelete);
        return new TakenReplays(peer, local) { PeerUndeleted = peerPresent, LocalUndeleted = localPresent };
    }

    /// <summary>
    /// Deletes what a thaw took with its delete deferred (<see cref="Thaw"/>), from the maps pinned in
    /// <paramref name="pinDirectory"/>: after a resident agent has answered CRIU, since a 2 KiB record costs the
    /// kernel a few microseconds to free (1,500: 4 ms). Maps detached meanwhile took their records with them.
    /// </summary>
    public static void DeleteTaken(string pinDirectory, TakenReplays taken)
    {
        foreach ((MapDefinition definition, ConnectionKey[] keys) in new[] { (KernelObjects.Replay, taken.PeerUndeleted), (KernelObjects.LocalReplay, taken.LocalUndeleted) })
        {
            if (keys.Length == 0)
                continue;
            try
            {
                using BpfMap<ConnectionKey, ReplayRecord> map = BpfMap.OpenPinned(Path.Combine(pinDirectory, definition.PinName)).As<ConnectionKey, ReplayRecord>();
                map.DeletePresent(keys);
            }
            catch (BpfException)
            {
                // Detached (or replaced) since the thaw: the records went with the map.
            }
        }
    }

    /// <summary>Deletes the records of <paramref name="keys"/> in both replay maps (a new freeze starts without them).</summary>
    public void DeleteReplays(ConnectionKey[] keys)
    {
        DeleteRecords(Replay, keys);
        DeleteRecords(LocalReplay, keys);
    }

    /// <summary>
    /// Deletes the records of those of <paramref name="keys"/> that have one. The kernel's batch delete stops at each
    /// absent key, and a fresh freeze's keys are nearly all absent: 1,500 keys were 1,500 system calls per map. So an
    /// empty map costs one call, a few dozen keys a delete each, and more a batched read of what the map holds and one
    /// delete of exactly those.
    /// </summary>
    private static void DeleteRecords(IKeyValueMap<ConnectionKey, ReplayRecord> map, ConnectionKey[] keys)
    {
        if (keys.Length == 0 || map.IsEmpty())
            return;
        if (keys.Length <= LookUpOneByOneUpTo)
        {
            map.DeletePresent(keys);
            return;
        }
        HashSet<ConnectionKey> asked = [.. keys];
        var present = new List<ConnectionKey>();
        map.VisitAll((batchKeys, _) =>
        {
            foreach (ConnectionKey key in batchKeys)
                if (asked.Contains(key))
                    present.Add(key);
        });
        map.DeletePresent(present.ToArray());
    }

    /// <summary>Up to this many keys, each is looked up alone; above it, one batched read of the map costs less.</summary>
    private const int LookUpOneByOneUpTo = 64;

    private static (Dictionary<ConnectionKey, KeptSegment> Taken, ConnectionKey[] Undeleted) Take(IKeyValueMap<ConnectionKey, ReplayRecord> map,
        ConnectionKey[] keys, Func<ConnectionKey, bool> wanted, bool deferDelete)
    {
        var taken = new Dictionary<ConnectionKey, KeptSegment>();
        if (keys.Length == 0 || map.IsEmpty())
            return (taken, []);
        if (keys.Length <= LookUpOneByOneUpTo)
        {
            foreach (ConnectionKey key in keys)
                if (wanted(key) && map.TryLookup(key, out ReplayRecord record))
                    taken[key] = new KeptSegment(record);
            if (deferDelete)
                return (taken, keys);
            map.DeletePresent(keys);
            return (taken, []);
        }
        // A thaw of thousands, of which some hundreds have a record: one batched read of what the map holds
        // (about a hundred 2 KiB records per system call, visited in place, only the captured bytes kept) and a
        // delete of exactly those, instead of a lookup and a delete attempt per key (1,500 keys: 3,000 system calls
        // and more).
        HashSet<ConnectionKey> asked = [.. keys];
        var present = new List<ConnectionKey>();
        map.VisitAll((batchKeys, records) =>
        {
            for (int i = 0; i < batchKeys.Length; i++)
            {
                if (!asked.Contains(batchKeys[i]))
                    continue;
                present.Add(batchKeys[i]);
                if (wanted(batchKeys[i]))
                    taken[batchKeys[i]] = new KeptSegment(records[i]);
            }
        });
        if (deferDelete)
            return (taken, present.ToArray());
        map.DeletePresent(present.ToArray());
        return (taken, []);
    }

    /// <summary>
    /// The records <paramref name="map"/> holds for <paramref name="keys"/> that <paramref name="keep"/> accepts, without
    /// deleting them: a lookup per key up to a few dozen keys, else one batched read of the map.
    /// </summary>
    public static Dictionary<ConnectionKey, KeptSegment> Read(IKeyValueMap<ConnectionKey, ReplayRecord> map, ConnectionKey[] keys,
        Func<ConnectionKey, ReplayRecord, bool> keep)
    {
        var found = new Dictionary<ConnectionKey, KeptSegment>();
        if (keys.Length == 0 || map.IsEmpty())
            return found;
        if (keys.Length <= LookUpOneByOneUpTo)
        {
            foreach (ConnectionKey key in keys)
                if (map.TryLookup(key, out ReplayRecord record) && keep(key, record))
                    found[key] = new KeptSegment(record);
            return found;
        }
        HashSet<ConnectionKey> asked = [.. keys];
        map.VisitAll((batchKeys, records) =>
        {
            for (int i = 0; i < batchKeys.Length; i++)
                if (asked.Contains(batchKeys[i]) && keep(batchKeys[i], records[i]))
                    found[batchKeys[i]] = new KeptSegment(records[i]);
        });
        return found;
    }

    public FrozenSet<ConnectionKey> Connections { get; }

    public FrozenSet<EndpointKey> Endpoints { get; }

    /// <summary>
    /// Sets the tf_config flag that lets the kernel programs skip endpoint lookups while
    /// no endpoint is frozen. Opened before endpoints are inserted and closed only after
    /// the endpoints map is seen empty (under the pin lock), so it is never clear while
    /// an endpoint is frozen.
    /// </summary>
    public void OpenEndpointGate() => _config.Update(EndpointGate, 1UL);

    /// <inheritdoc cref="OpenEndpointGate()"/>
    public static void OpenEndpointGate(BpfMap<uint, ulong> config) => config.Update(EndpointGate, 1UL);

    /// <summary>tf_config's key of the endpoint flag.</summary>
    private const uint EndpointGate = 0;

    /// <summary>Clears the endpoint flag if no endpoint is frozen (see <see cref="OpenEndpointGate()"/>).</summary>
    public void CloseEndpointGateIfEmpty()
    {
        if (Endpoints.IsEmpty())
            _config.Update(EndpointGate, 0UL);
    }

    /// <summary>Packet counters summed over CPUs, and how much is frozen.</summary>
    public FreezerStatistics ReadStatistics()
    {
        ulong Sum(int index) => ReadCounter(index);
        ulong now = Interop.Libc.MonotonicNanoseconds();
        int connections = 0, expiredConnections = 0, endpoints = 0, expiredEndpoints = 0;
        foreach (var e in Connections.ReadAll())
            _ = e.Value.Remaining(now) == TimeSpan.Zero ? expiredConnections++ : connections++;
        foreach (var e in Endpoints.ReadAll())
            _ = e.Value.Remaining(now) == TimeSpan.Zero ? expiredEndpoints++ : endpoints++;
        return new FreezerStatistics(Sum(BpfNames.CounterSeen), Sum(BpfNames.CounterDroppedIngress), Sum(BpfNames.CounterDroppedEgress),
            Sum(BpfNames.CounterPassed), connections, endpoints, Connections.Capacity)
        {
            ExpiredConnections = expiredConnections,
            ExpiredEndpoints = expiredEndpoints,
        };
    }

    /// <summary>One of the kernel's per-CPU packet counters (<see cref="BpfNames"/>' Counter* indexes), summed over CPUs.</summary>
    public ulong ReadCounter(int index) => _counters.LookupPerCpu((uint)index).Aggregate(0UL, (a, b) => a + b);

    /// <summary>How many connections (or endpoints) are frozen now; entries whose lease ended do not count.</summary>
    public int CountFrozen(bool endpoints)
    {
        ulong now = Interop.Libc.MonotonicNanoseconds();
        return endpoints
            ? Endpoints.ReadAll().Count(e => e.Value.Remaining(now) != TimeSpan.Zero)
            : Connections.ReadAll().Count(e => e.Value.Remaining(now) != TimeSpan.Zero);
    }

    public void Dispose()
    {
        Connections.Dispose();
        Endpoints.Dispose();
        _counters.Dispose();
        _config.Dispose();
        Replay.Dispose();
        LocalReplay.Dispose();
    }
}

/// <summary>
/// What <see cref="FreezerMaps.Thaw"/> did: how many of each set it thawed, the keys that were not frozen, the released
/// connections' entries (for the kick) and the replay records it took for them.
/// </summary>
internal sealed record Thawing(int Connections, int Endpoints, List<ConnectionKey> MissingConnections, List<EndpointKey> MissingEndpoints,
    List<(ConnectionKey Key, FreezeEntry Entry)> Released, TakenReplays Replays)
{
    /// <summary>The public result, without the kick (sent after the pin lock is let go).</summary>
    public ThawResult ToResult() => new(Connections, Endpoints, MissingConnections, MissingEndpoints);
}

/// <summary>The replay records a thaw took: the peers' segments (<see cref="Peer"/>) and this host's own (<see cref="Local"/>).</summary>
internal sealed record TakenReplays(Dictionary<ConnectionKey, KeptSegment> Peer, Dictionary<ConnectionKey, KeptSegment> Local)
{
    public static TakenReplays None => new([], []);

    /// <summary>Keys whose peer records were taken with the delete deferred (<see cref="FreezerMaps.DeleteTaken"/>); else empty.</summary>
    public ConnectionKey[] PeerUndeleted { get; init; } = [];

    /// <summary>The same for this host's own records.</summary>
    public ConnectionKey[] LocalUndeleted { get; init; } = [];
}

/// <summary>
/// What a thaw keeps of a <see cref="ReplayRecord"/>: the captured bytes only (most segments are
/// a hundred bytes or so, the record 2 KiB), the IP length and when it was recorded.
/// </summary>
internal sealed class KeptSegment(byte[] packet, uint ipLength, ulong recordedNs)
{
    /// <summary>A copy of what <paramref name="record"/> captured.</summary>
    public KeptSegment(in ReplayRecord record) : this(record.Packet(), record.IpLength, record.RecordedNs)
    {
    }

    public byte[] Packet { get; } = packet;
    public uint IpLength { get; } = ipLength;

    /// <summary>CLOCK_MONOTONIC of the drop, in nanoseconds.</summary>
    public ulong RecordedNs { get; } = recordedNs;

    public PeerSegment ToPeerSegment() => new(Packet, IpLength);
}
