using TcpFreeze.Ebpf.Interop;

namespace TcpFreeze;

/// <summary>
/// The map operations the frozen set and its companion maps use: the seam between their
/// transaction rules (capacity refusal, exact rollback, sweeping, renewal) and the kernel.
/// <see cref="KernelMap{TKey, TValue}"/> is the real one, over a typed <see cref="BpfMap{TKey, TValue}"/>;
/// the unit tests put an in-memory map with the kernel's semantics behind it (as aya swaps
/// its syscall layer), so the rules are tested without root. Failures are the kernel's:
/// <see cref="BpfException"/>, and <see cref="BpfBatchException"/> for a batch.
/// </summary>
internal interface IKeyValueMap<TKey, TValue> : IDisposable where TKey : unmanaged where TValue : unmanaged
{
    /// <summary>The kernel's id of the map (what a program's map list names).</summary>
    uint Id { get; }

    /// <summary>max_entries.</summary>
    uint Capacity { get; }

    /// <inheritdoc cref="BpfMap{TKey, TValue}.IsEmpty"/>
    bool IsEmpty();

    /// <inheritdoc cref="BpfMap{TKey, TValue}.TryLookup"/>
    bool TryLookup(in TKey key, out TValue value);

    /// <inheritdoc cref="BpfMap{TKey, TValue}.Update"/>
    void Update(in TKey key, in TValue value, MapUpdate flags = MapUpdate.Any);

    /// <inheritdoc cref="BpfMap{TKey, TValue}.GetKeys"/>
    List<TKey> GetKeys();

    /// <inheritdoc cref="BpfMap{TKey, TValue}.LookupAll"/>
    List<KeyValuePair<TKey, TValue>> LookupAll();

    /// <inheritdoc cref="BpfMap{TKey, TValue}.VisitAll"/>
    void VisitAll(BatchVisitor<TKey, TValue> visit)
    {
        List<KeyValuePair<TKey, TValue>> all = LookupAll();
        visit(all.Select(e => e.Key).ToArray(), all.Select(e => e.Value).ToArray());
    }

    /// <inheritdoc cref="BpfMap{TKey, TValue}.LookupPerCpu"/>
    TValue[] LookupPerCpu(in TKey key);

    /// <inheritdoc cref="BpfMap{TKey, TValue}.UpdateBatch"/>
    void UpdateBatch(ReadOnlySpan<TKey> keys, ReadOnlySpan<TValue> values);

    /// <inheritdoc cref="BpfMap{TKey, TValue}.DeletePresent"/>
    int DeletePresent(ReadOnlySpan<TKey> keys, ICollection<TKey>? absent = null);
}

/// <summary>A kernel map behind <see cref="IKeyValueMap{TKey, TValue}"/>; owns the typed view's descriptor.</summary>
internal sealed class KernelMap<TKey, TValue>(BpfMap<TKey, TValue> map) : IKeyValueMap<TKey, TValue> where TKey : unmanaged where TValue : unmanaged
{
    /// <summary>The typed view of <paramref name="untyped"/>, its sizes checked here.</summary>
    public KernelMap(BpfMap untyped) : this(untyped.As<TKey, TValue>())
    {
    }

    public uint Id => map.Info.Id;
    public uint Capacity => map.Info.MaxEntries;
    public bool IsEmpty() => map.IsEmpty();
    public bool TryLookup(in TKey key, out TValue value) => map.TryLookup(key, out value);
    public void Update(in TKey key, in TValue value, MapUpdate flags = MapUpdate.Any) => map.Update(key, value, flags);
    public List<TKey> GetKeys() => map.GetKeys();
    public List<KeyValuePair<TKey, TValue>> LookupAll() => map.LookupAll();
    public void VisitAll(BatchVisitor<TKey, TValue> visit) => map.VisitAll(visit);
    public TValue[] LookupPerCpu(in TKey key) => map.LookupPerCpu(key);
    public void UpdateBatch(ReadOnlySpan<TKey> keys, ReadOnlySpan<TValue> values) => map.UpdateBatch(keys, values);
    public int DeletePresent(ReadOnlySpan<TKey> keys, ICollection<TKey>? absent = null) => map.DeletePresent(keys, absent);
    public void Dispose() => map.Dispose();
}
