using Interop;
using TcpFreeze.Ebpf.Interop;
using TcpFreeze.Native;

namespace TcpFreeze;

/// <summary>
/// One freeze map (connections or endpoints) as a set of keys with their
/// <see cref="FreezeEntry"/> values, and the map transactions on it: all-or-nothing
/// insertion with exact rollback, and deletion of the keys that are present.
/// </summary>
internal sealed class FrozenSet<TKey> : IDisposable where TKey : unmanaged, IEquatable<TKey>
{
    /// <summary>Up to this many keys, a freeze into a non-empty map looks each key up; more read the whole map.</summary>
    private const int LookupOneByOneUpTo = 256;

    private readonly IKeyValueMap<TKey, FreezeEntry> _map;

    /// <param name="map">The map (a <see cref="KernelMap{TKey, TValue}"/>, whose layout was checked against its <see cref="MapDefinition"/> when it was opened); owned from now on.</param>
    /// <param name="what">"connections" or "endpoints", for messages.</param>
    public FrozenSet(IKeyValueMap<TKey, FreezeEntry> map, string what)
    {
        _map = map;
        What = what;
    }

    public string What { get; }

    /// <summary>The kernel's id of the map (the programs that enforce this set use it).</summary>
    public uint MapId => _map.Id;

    public uint Capacity => _map.Capacity;

    public bool IsEmpty() => _map.IsEmpty();

    public List<KeyValuePair<TKey, FreezeEntry>> ReadAll() => _map.LookupAll();

    public bool TryLookup(in TKey key, out FreezeEntry entry) => _map.TryLookup(key, out entry);

    /// <summary>
    /// Writes all keys in one batch call. Keys that are frozen already keep what
    /// <see cref="FreezeEntry.Renewed"/> keeps and get the new lease; their old values are
    /// kept so that a failure part-way can be undone exactly: new keys deleted, old values
    /// restored.
    /// <para>
    /// Before writing, under the caller's pin lock: entries whose lease has ended (the
    /// programs ignore them already) are deleted, so they neither count against the
    /// capacity nor stay for ever; then the capacity is checked (entries present + keys
    /// new to the map vs. max_entries), so a batch that would not fit is refused before
    /// any of it is written: a refused freeze never freezes anything, not even briefly.
    /// Expired entries are swept here, in user space under the pin lock, and not by the
    /// kernel programs: a program that met an expired entry and deleted it could delete
    /// the entry a concurrent re-freeze of the same key had just written (a hash map has
    /// no compare-and-delete), silently unfreezing it.
    /// </para>
    /// </summary>
    /// <param name="keys">The keys to freeze, distinct.</param>
    /// <param name="deadline">Their lease's CLOCK_MONOTONIC deadline; 0 for none.</param>
    /// <param name="now">CLOCK_MONOTONIC now, in nanoseconds: what "expired" is measured against.</param>
    /// <param name="timing">How the keys are held, those frozen already included (<see cref="FreezeEntry.Renewed"/>).</param>
    /// <exception cref="TcpFreezeException">The batch does not fit or failed; nothing of it is left.</exception>
    public Insertion Insert(TKey[] keys, ulong deadline, ulong now, FreezeTiming timing = FreezeTiming.Now)
    {
        var insertion = new Insertion(this);
        if (keys.Length == 0)
            return insertion;
        Dictionary<TKey, FreezeEntry>? existing = _map.IsEmpty() ? null : _map.LookupAll().ToDictionary(e => e.Key, e => e.Value);
        if (existing is not null)
            insertion.Swept = SweepExpired(existing, now);
        int present = existing?.Count ?? 0;
        int fresh = existing is null ? keys.Length : keys.Count(k => !existing.ContainsKey(k));
        if ((long)present + fresh > Capacity)
            throw new TcpFreezeException($"freeze {keys.Length} {What}",
                $"the {What} map is full: {present} frozen + {fresh} new would exceed its {Capacity} entries; nothing was frozen. " +
                "Thaw entries that are no longer needed, or detach and attach again with a larger capacity");
        var values = new FreezeEntry[keys.Length];
        for (int i = 0; i < keys.Length; i++)
        {
            if (existing is not null && existing.TryGetValue(keys[i], out FreezeEntry old))
            {
                values[i] = FreezeEntry.Renewed(old, deadline, timing);
                insertion.Replaced.Add((keys[i], old));
            }
            else
            {
                values[i] = FreezeEntry.Renewed(null, deadline, timing);
                insertion.Created.Add(keys[i]);
            }
        }
        try
        {
            _map.UpdateBatch(keys, values);
        }
        catch (BpfException e)
        {
            insertion.RollBack();
            string reason = e.Errno is Errnos.E2BIG or Errnos.ENOSPC or Errnos.ENOMEM
                ? $"the {What} map is full ({Capacity} entries); nothing was frozen. Thaw entries that are no longer needed, or detach and attach again with a larger capacity"
                : $"{e.Message}; nothing was frozen";
            throw new TcpFreezeException($"freeze {keys.Length} {What}", reason, e);
        }
        return insertion;
    }

    /// <summary>
    /// Deletes the entries of <paramref name="entries"/> (the whole map, just read) whose
    /// lease has ended, and removes them from it; returns how many. Only under the pin lock
    /// (see <see cref="Insert"/> for why user space sweeps and the programs do not).
    /// </summary>
    private int SweepExpired(Dictionary<TKey, FreezeEntry> entries, ulong now)
    {
        TKey[] expired = entries.Where(e => e.Value.Remaining(now) == TimeSpan.Zero).Select(e => e.Key).ToArray();
        if (expired.Length == 0)
            return 0;
        int deleted = _map.DeletePresent(expired);
        foreach (TKey key in expired)
            entries.Remove(key);
        return deleted;
    }

    /// <summary>
    /// Gives the keys of <paramref name="keys"/> that are present and still frozen the deadline
    /// <paramref name="deadline"/>; returns how many. A key that is absent, or whose lease has
    /// ended, is left as it is: renewing never freezes anything again. Each key is read and then
    /// rewritten only if still present (BPF_EXIST), so a thaw that deletes it meanwhile wins; a drop
    /// the programs count between the read and the write may be lost from the counters (a later
    /// drop records the same sequence number again). Only under the pin lock.
    /// </summary>
    public int Renew(TKey[] keys, ulong deadline, ulong now)
    {
        int renewed = 0;
        foreach (TKey key in keys)
        {
            if (!_map.TryLookup(key, out FreezeEntry entry) || entry.Remaining(now) == TimeSpan.Zero || entry.DeadlineNs == 0)
                continue;
            entry.DeadlineNs = deadline;
            try
            {
                _map.Update(key, entry, MapUpdate.Exist);
                renewed++;
            }
            catch (BpfException e) when (e.Errno == Errnos.ENOENT)
            {
                // thawed meanwhile
            }
        }
        return renewed;
    }

    /// <summary>Deletes every entry whose lease has ended; returns how many (see <see cref="Insert"/>). Only under the pin lock.</summary>
    public int RemoveExpired(ulong now)
        => _map.IsEmpty() ? 0 : SweepExpired(_map.LookupAll().ToDictionary(e => e.Key, e => e.Value), now);

    /// <summary>
    /// The entries of those of <paramref name="keys"/> that are present, and no others: a lookup
    /// per key for a few hundred keys, above that one read of the whole map in a few batch calls.
    /// </summary>
    public Dictionary<TKey, FreezeEntry> Lookup(TKey[] keys)
    {
        var found = new Dictionary<TKey, FreezeEntry>();
        if (keys.Length == 0 || _map.IsEmpty())
            return found;
        if (keys.Length <= LookupOneByOneUpTo)
        {
            foreach (TKey key in keys)
                if (_map.TryLookup(key, out FreezeEntry entry))
                    found[key] = entry;
            return found;
        }
        HashSet<TKey> asked = [.. keys];
        foreach ((TKey key, FreezeEntry entry) in _map.LookupAll())
            if (asked.Contains(key))
                found[key] = entry;
        return found;
    }

    /// <summary>Deletes the keys that are present (absent ones are the normal case and cost no exception); returns how many.</summary>
    public int DeletePresent(TKey[] keys, List<TKey>? missing = null) => _map.DeletePresent(keys, missing);

    /// <summary>
    /// Deletes the keys that are present, like <see cref="DeletePresent"/>, and adds to
    /// <paramref name="released"/> the value each deleted key had just before, if its lease had
    /// not ended: the keys whose packets this call let flow again, with what the programs
    /// recorded for them. The values are read first; a packet dropped between the read and the
    /// delete may update a recorded sequence number, which is a retransmission of the same byte.
    /// </summary>
    public int Release(TKey[] keys, List<TKey> missing, List<(TKey Key, FreezeEntry Entry)> released)
    {
        Dictionary<TKey, FreezeEntry> before = Lookup(keys);
        int deleted = _map.DeletePresent(keys, missing);
        if (before.Count == 0)
            return deleted;
        ulong now = Interop.Libc.MonotonicNanoseconds();
        HashSet<TKey>? notDeleted = missing.Count == 0 ? null : [.. missing];
        foreach ((TKey key, FreezeEntry entry) in before)
            if (notDeleted?.Contains(key) != true && entry.Remaining(now) != TimeSpan.Zero)
                released.Add((key, entry));
        return deleted;
    }

    public void Dispose() => _map.Dispose();

    /// <summary>What one <see cref="Insert"/> changed, so that it can be undone exactly.</summary>
    internal sealed class Insertion(FrozenSet<TKey> set)
    {
        public List<TKey> Created { get; } = [];
        public List<(TKey Key, FreezeEntry Old)> Replaced { get; } = [];

        /// <summary>Expired entries deleted before the write (not undone by <see cref="RollBack"/>: they froze nothing).</summary>
        public int Swept { get; set; }

        /// <summary>How many replaced keys were still frozen (an entry whose lease had ended dropped nothing any more).</summary>
        public int StillFrozen(ulong now) => Replaced.Count(r => r.Old.Remaining(now) != TimeSpan.Zero);

        public void RollBack()
        {
            set.DeletePresent(Created.ToArray());
            foreach ((TKey key, FreezeEntry old) in Replaced)
                set._map.Update(key, old, MapUpdate.Any);
        }
    }
}
