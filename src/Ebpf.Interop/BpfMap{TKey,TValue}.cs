namespace TcpFreeze.Ebpf.Interop;

/// <summary>
/// A typed view of a <see cref="BpfMap"/> (see <see cref="BpfMap.As{TKey, TValue}"/>):
/// the key and value sizes were checked against the map's definition once, when the
/// view was made, so every call here goes straight to the kernel. The view shares the
/// map's descriptor; disposing it closes the map.
/// </summary>
/// <typeparam name="TKey">The key's layout, byte for byte the kernel's.</typeparam>
/// <typeparam name="TValue">The value's layout (one CPU's slot for per-CPU maps).</typeparam>
public sealed class BpfMap<TKey, TValue> : IDisposable where TKey : unmanaged where TValue : unmanaged
{
    internal BpfMap(BpfMap map) => Map = map;

    /// <summary>The untyped map (raw byte operations, pinning, the descriptor).</summary>
    public BpfMap Map { get; }

    /// <summary>The kernel's description of the map.</summary>
    public BpfMapInfo Info => Map.Info;

    /// <summary>Looks up <paramref name="key"/>; false when absent.</summary>
    public bool TryLookup(in TKey key, out TValue value)
    {
        value = default;
        return Map.LookupUnchecked(BpfMap.AsBytes(in key), System.Runtime.InteropServices.MemoryMarshal.AsBytes(new Span<TValue>(ref value)));
    }

    /// <summary>Creates or replaces an element, as <paramref name="flags"/> says.</summary>
    public void Update(in TKey key, in TValue value, MapUpdate flags = MapUpdate.Any)
        => Map.UpdateUnchecked(BpfMap.AsBytes(in key), BpfMap.AsBytes(in value), flags);

    /// <summary>Deletes <paramref name="key"/>; false when it was absent.</summary>
    public bool Delete(in TKey key) => Map.DeleteUnchecked(BpfMap.AsBytes(in key));

    /// <summary>Whether the map has no key (one system call).</summary>
    public bool IsEmpty() => Map.IsEmpty();

    /// <summary>All keys (a snapshot that may miss concurrent changes).</summary>
    public List<TKey> GetKeys() => Map.GetKeysUnchecked<TKey>();

    /// <summary>Every element, read a few thousand per system call (see <see cref="BpfMap.LookupAll{TKey, TValue}"/>).</summary>
    public List<KeyValuePair<TKey, TValue>> LookupAll() => Map.LookupAllUnchecked<TKey, TValue>();

    /// <summary>One key of a per-CPU map: one value per possible CPU.</summary>
    public TValue[] LookupPerCpu(in TKey key) => Map.LookupPerCpuUnchecked<TKey, TValue>(in key);

    /// <summary>
    /// Creates or replaces many elements in one system call, in order; on failure a
    /// <see cref="BpfBatchException"/> says how many were applied before the failing one.
    /// </summary>
    public void UpdateBatch(ReadOnlySpan<TKey> keys, ReadOnlySpan<TValue> values) => Map.UpdateBatchUnchecked(keys, values);

    /// <summary>
    /// Deletes many keys in one system call, stopping at the first absent key (the result
    /// says where). Absent keys are not exceptional; other failures throw <see cref="BpfBatchException"/>.
    /// </summary>
    public BpfBatchResult DeleteBatch(ReadOnlySpan<TKey> keys) => Map.DeleteBatchUnchecked(keys);

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
            BpfBatchResult result = Map.DeleteBatchUnchecked(keys[index..]);
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
}
