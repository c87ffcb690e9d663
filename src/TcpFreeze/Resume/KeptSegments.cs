namespace TcpFreeze.Resume;

/// <summary>
/// The segments the programs kept for frozen connections, read without taking them (for a restore on another host,
/// which replays them from the manifest): only a record of the freeze in force counts, as for a thaw
/// (<see cref="FreezerMaps.IsOfFreeze"/>), and a local segment's TCP timestamp is set back to the connection's first
/// drop, as a thaw here would set it (<see cref="SegmentReplay.Plan"/>).
/// </summary>
internal static class KeptSegments
{
    /// <summary>
    /// The peer (<paramref name="peer"/>) and local (<paramref name="local"/>) segments kept for <paramref name="keys"/>.
    /// Which freeze is in force comes from <paramref name="listed"/> when the caller has just listed the frozen set,
    /// else from one lookup of the keys. Above a few dozen keys the maps are read in batches (1,500 keys: a few system
    /// calls, not 3,000 lookups of 2 KiB records).
    /// </summary>
    public static (Dictionary<ConnectionKey, PeerSegment> Peer, Dictionary<ConnectionKey, PeerSegment> Local) Read(
        FreezerMaps maps, ConnectionKey[] keys, bool peer, bool local, Dictionary<ConnectionKey, FreezeEntry>? listed)
    {
        var peers = new Dictionary<ConnectionKey, PeerSegment>();
        var locals = new Dictionary<ConnectionKey, PeerSegment>();
        bool readPeer = peer && keys.Length > 0 && !maps.Replay.IsEmpty();
        bool readLocal = local && keys.Length > 0 && !maps.LocalReplay.IsEmpty();
        if (!readPeer && !readLocal)
            return (peers, locals);
        Dictionary<ConnectionKey, FreezeEntry> entries = listed ?? maps.Connections.Lookup(keys);
        bool OfThisFreeze(ConnectionKey key, ReplayRecord record)
            => entries.TryGetValue(key, out FreezeEntry entry) && FreezerMaps.IsOfFreeze(entry, record.RecordedNs);
        if (readPeer)
            foreach ((ConnectionKey key, KeptSegment record) in FreezerMaps.Read(maps.Replay, keys, OfThisFreeze))
                peers[key] = record.ToPeerSegment();
        if (readLocal)
            foreach ((ConnectionKey key, KeptSegment record) in FreezerMaps.Read(maps.LocalReplay, keys, OfThisFreeze))
                locals[key] = SegmentReplay.WithTimestampBackdated(record.ToPeerSegment(),
                    SegmentReplay.BackdateMilliseconds(record.RecordedNs, entries[key].FirstDropNs));
        return (peers, locals);
    }
}
