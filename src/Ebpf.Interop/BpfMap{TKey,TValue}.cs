using TcpFreeze.Native;

namespace TcpFreeze.Ebpf.Interop;

/// <summary>
/// A BPF map read and written as <typeparamref name="TKey"/> and <typeparamref name="TValue"/>
/// (made by <see cref="BpfMap.As{TKey, TValue}"/>). The sizes were checked against the map's
/// definition once, when the view was made, so every call here goes straight to the kernel.
/// The view shares the map's descriptor; disposing it closes the map.
/// </summary>
/// <typeparam name="TKey">The key's layout, byte for byte the kernel's.</typeparam>
/// <typeparam name="TValue">The value's layout (one CPU's slot for per-CPU maps).</typeparam>
public sealed unsafe class BpfMap<TKey, TValue> : IDisposable where TKey : unmanaged where TValue : unmanaged
{
    internal BpfMap(BpfMap map) => Map = map;

    /// <summary>The map itself: pinning, the descriptor, its definition.</summary>
    public BpfMap Map { get; }

    /// <summary>The kernel's description of the map.</summary>
    public BpfMapInfo Info => Map.Info;

    /// <summary>Looks up <paramref name="key"/>; false when absent.</summary>
    public bool TryLookup(in TKey key, out TValue value)
    {
        RefusePerCpu(nameof(TryLookup));
        value = default;
        using var fd = Map.Handle.Borrow();
        fixed (TKey* k = &key)
        fixed (TValue* v = &value)
        {
            int result = Libbpf.bpf_map_lookup_elem(fd.Fd, k, v);
            if (result == -Errnos.ENOENT)
                return false;
            if (result < 0)
                throw new BpfException($"look up a key in map '{Info.Name}'", -result);
            return true;
        }
    }

    /// <summary>Creates or replaces an element, as <paramref name="flags"/> says.</summary>
    public void Update(in TKey key, in TValue value, MapUpdate flags = MapUpdate.Any)
    {
        RefusePerCpu(nameof(Update));
        using var fd = Map.Handle.Borrow();
        fixed (TKey* k = &key)
        fixed (TValue* v = &value)
        {
            int result = Libbpf.bpf_map_update_elem(fd.Fd, k, v, (ulong)flags);
            if (result < 0)
                throw new BpfException($"update map '{Info.Name}'", -result, Map.UpdateHint(-result));
        }
    }

    /// <summary>Deletes <paramref name="key"/>; false when it was absent.</summary>
    public bool Delete(in TKey key)
    {
        using var fd = Map.Handle.Borrow();
        fixed (TKey* k = &key)
        {
            int result = Libbpf.bpf_map_delete_elem(fd.Fd, k);
            if (result == -Errnos.ENOENT)
                return false;
            if (result < 0)
                throw new BpfException($"delete from map '{Info.Name}'", -result);
            return true;
        }
    }

    /// <summary>Whether the map has no key (one system call).</summary>
    public bool IsEmpty() => Map.IsEmpty();

    /// <summary>All keys, read with BPF_MAP_GET_NEXT_KEY (a snapshot that may miss concurrent changes).</summary>
    public List<TKey> GetKeys()
    {
        var keys = new List<TKey>();
        TKey current = default, next = default;
        using var fd = Map.Handle.Borrow();
        // Bounded: a map never holds more than max_entries keys; allow for churn.
        for (long i = 0; i <= 2L * Info.MaxEntries + 1; i++)
        {
            int result = Libbpf.bpf_map_get_next_key(fd.Fd, i == 0 ? null : &current, &next);
            if (result == -Errnos.ENOENT)
                break;
            if (result < 0)
                throw new BpfException($"iterate map '{Info.Name}'", -result);
            keys.Add(next);
            current = next;
        }
        return keys;
    }

    /// <summary>
    /// Reads every element with BPF_MAP_LOOKUP_BATCH, a few thousand per system call
    /// (hash maps; a consistent view per bucket, not of the whole map).
    /// </summary>
    public List<KeyValuePair<TKey, TValue>> LookupAll()
    {
        var result = new List<KeyValuePair<TKey, TValue>>();
        VisitAll((keys, values) =>
        {
            for (int i = 0; i < keys.Length; i++)
                result.Add(new KeyValuePair<TKey, TValue>(keys[i], values[i]));
        });
        return result;
    }

    /// <summary>
    /// Reads every element as <see cref="LookupAll"/> does, but hands each system call's
    /// elements to <paramref name="visit"/> as they come, in a buffer of about 256 KiB outside
    /// the managed heap, instead of collecting them: for maps of large values (kilobytes each),
    /// whose copies would otherwise fill the large-object heap and trigger collections. The
    /// spans are valid only during the call.
    /// </summary>
    public void VisitAll(BatchVisitor<TKey, TValue> visit)
    {
        ArgumentNullException.ThrowIfNull(visit);
        RefusePerCpu(nameof(VisitAll));
        // Up to 4,096 elements a call, within a buffer of about 256 KiB: a map of 2 KiB values reads ~120 a call.
        int chunk = (int)Math.Clamp(Math.Min(Info.MaxEntries, (uint)(256 * 1024 / (sizeof(TKey) + sizeof(TValue)))), 16u, 4096u);
        TKey* keys = null;
        TValue* values = null;
        try
        {
            keys = (TKey*)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)chunk, (nuint)sizeof(TKey));
            values = (TValue*)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)chunk, (nuint)sizeof(TValue));
            ulong inBatch = 0, outBatch = 0;
            bool first = true;
            var opts = new Libbpf.BpfMapBatchOpts { Size = (nuint)sizeof(Libbpf.BpfMapBatchOpts) };
            using var fd = Map.Handle.Borrow();
            // Bounded: every round either returns elements or ends; ENOSPC grows the buffer (at most ~20 times).
            for (int round = 0; round < Info.MaxEntries + 64; round++)
            {
                uint count = (uint)chunk;
                int rc = Libbpf.bpf_map_lookup_batch(fd.Fd, first ? null : &inBatch, &outBatch, keys, values, &count, &opts);
                if (rc == -Errnos.ENOSPC && count == 0)
                {
                    // One bucket holds more elements than the buffer: grow it and retry.
                    chunk *= 2;
                    keys = (TKey*)System.Runtime.InteropServices.NativeMemory.Realloc(keys, (nuint)chunk * (nuint)sizeof(TKey));
                    values = (TValue*)System.Runtime.InteropServices.NativeMemory.Realloc(values, (nuint)chunk * (nuint)sizeof(TValue));
                    continue;
                }
                if (rc < 0 && rc != -Errnos.ENOENT)
                    throw new BpfException($"batch-read map '{Info.Name}'", -rc);
                int n = (int)Math.Min(count, (uint)chunk);
                if (n > 0)
                    visit(new ReadOnlySpan<TKey>(keys, n), new ReadOnlySpan<TValue>(values, n));
                if (rc == -Errnos.ENOENT)
                    break;
                inBatch = outBatch;
                first = false;
            }
        }
        finally
        {
            System.Runtime.InteropServices.NativeMemory.Free(keys);
            System.Runtime.InteropServices.NativeMemory.Free(values);
        }
    }

    /// <summary>One key of a per-CPU map: one value per possible CPU.</summary>
    public TValue[] LookupPerCpu(in TKey key)
    {
        if (!Info.IsPerCpu)
            throw new InvalidOperationException($"map '{Info.Name}' is not a per-CPU map");
        var values = new TValue[BpfSystem.PossibleCpuCount];
        using var fd = Map.Handle.Borrow();
        fixed (TKey* k = &key)
        fixed (TValue* v = values)
        {
            int result = Libbpf.bpf_map_lookup_elem(fd.Fd, k, v);
            if (result < 0)
                throw new BpfException($"look up a key in per-CPU map '{Info.Name}'", -result);
        }
        return values;
    }

    /// <summary>
    /// Creates or replaces many elements in one system call (BPF_MAP_UPDATE_BATCH; the kernel
    /// takes no NOEXIST/EXIST flag for batches), in order; on failure a
    /// <see cref="BpfBatchException"/> says how many were applied before the failing one.
    /// </summary>
    public void UpdateBatch(ReadOnlySpan<TKey> keys, ReadOnlySpan<TValue> values)
    {
        RefusePerCpu(nameof(UpdateBatch));
        if (keys.Length != values.Length)
            throw new ArgumentException($"{keys.Length} keys but {values.Length} values; a batch needs one value per key.", nameof(values));
        if (keys.IsEmpty)
            return;
        var opts = new Libbpf.BpfMapBatchOpts { Size = (nuint)sizeof(Libbpf.BpfMapBatchOpts) };
        uint count = (uint)keys.Length;
        using var fd = Map.Handle.Borrow();
        fixed (TKey* k = keys)
        fixed (TValue* v = values)
        {
            int result = Libbpf.bpf_map_update_batch(fd.Fd, k, v, &count, &opts);
            if (result < 0)
                throw new BpfBatchException($"batch-update {keys.Length} elements of map '{Info.Name}'", -result, (int)Math.Min(count, (uint)keys.Length), Map.UpdateHint(-result));
        }
    }

    /// <summary>
    /// Deletes many keys in one system call (BPF_MAP_DELETE_BATCH). The kernel stops at the
    /// first absent key: the result then has <see cref="BpfBatchResult.Errno"/> ENOENT and
    /// <see cref="BpfBatchResult.Processed"/> that key's index. An absent key is not an
    /// exception; any other failure is a <see cref="BpfBatchException"/>.
    /// </summary>
    public BpfBatchResult DeleteBatch(ReadOnlySpan<TKey> keys)
    {
        if (keys.IsEmpty)
            return new BpfBatchResult(0, 0);
        var opts = new Libbpf.BpfMapBatchOpts { Size = (nuint)sizeof(Libbpf.BpfMapBatchOpts) };
        uint count = (uint)keys.Length;
        using var fd = Map.Handle.Borrow();
        fixed (TKey* k = keys)
        {
            int result = Libbpf.bpf_map_delete_batch(fd.Fd, k, &count, &opts);
            int processed = (int)Math.Min(count, (uint)keys.Length);
            if (result == 0)
                return new BpfBatchResult(keys.Length, 0);
            if (result == -Errnos.ENOENT)
                return new BpfBatchResult(processed, Errnos.ENOENT);
            throw new BpfBatchException($"batch-delete {keys.Length} keys of map '{Info.Name}'", -result, processed);
        }
    }

    /// <summary>
    /// Deletes those of <paramref name="keys"/> that are present, in as few batch calls as
    /// the absent keys allow (the kernel stops a batch at each absent key), and adds each
    /// absent key to <paramref name="absent"/> when given. Returns how many were deleted.
    /// </summary>
    public int DeletePresent(ReadOnlySpan<TKey> keys, ICollection<TKey>? absent = null)
    {
        int index = 0, deleted = 0;
        // Bounded: every round deletes or skips at least one key.
        for (int round = 0; index < keys.Length && round <= keys.Length; round++)
        {
            BpfBatchResult result = DeleteBatch(keys[index..]);
            deleted += result.Processed;
            if (result.Completed)
                break;
            absent?.Add(keys[index + result.Processed]);
            index += result.Processed + 1;
        }
        return deleted;
    }

    /// <summary>Closes the map's descriptor; a pin keeps the map alive.</summary>
    public void Dispose() => Map.Dispose();

    // A per-CPU map reads and writes one value per possible CPU: a single TValue would be overrun.
    private void RefusePerCpu(string operation)
    {
        if (Info.IsPerCpu)
            throw new InvalidOperationException($"map '{Info.Name}' is a per-CPU map: {operation} would read or write one value per CPU; use LookupPerCpu");
    }
}
