using TcpFreeze.Ebpf.Interop;
using TcpFreeze.Native;

namespace TcpFreeze.Tests.Infrastructure;

/// <summary>
/// A BPF hash map in memory, with the kernel's answers: a new key into a full map is E2BIG,
/// BPF_NOEXIST on a present key EEXIST, BPF_EXIST on an absent key ENOENT, and a batch update
/// applies its elements in order and reports how many it applied before the one that failed.
/// Failures can be injected where the kernel would fail for reasons a test cannot provoke
/// without root (memory pressure, a key thawed by another process between two calls).
/// </summary>
internal sealed class InMemoryMap<TKey, TValue>(uint capacity, uint id = 1) : IKeyValueMap<TKey, TValue>
    where TKey : unmanaged where TValue : unmanaged
{
    private readonly Dictionary<TKey, TValue> _elements = [];

    public uint Id { get; } = id;
    public uint Capacity { get; } = capacity;

    /// <summary>The next batch update fails with this errno after applying <see cref="FailBatchAfter"/> elements.</summary>
    public int? FailBatchWith { get; set; }
    public int FailBatchAfter { get; set; }

    /// <summary>Called before every single-element update; may change the map (another process) or throw.</summary>
    public Action<TKey>? BeforeUpdate { get; set; }

    /// <summary>Per-CPU values returned by <see cref="LookupPerCpu"/>.</summary>
    public Dictionary<TKey, TValue[]> PerCpu { get; } = [];

    public int UpdateBatchCalls { get; private set; }
    public bool Disposed { get; private set; }

    /// <summary>The elements, as a snapshot.</summary>
    public Dictionary<TKey, TValue> Elements => new(_elements);

    public int Count => _elements.Count;

    public bool IsEmpty() => _elements.Count == 0;

    public bool TryLookup(in TKey key, out TValue value) => _elements.TryGetValue(key, out value);

    public void Update(in TKey key, in TValue value, MapUpdate flags = MapUpdate.Any)
    {
        BeforeUpdate?.Invoke(key);
        int errno = Write(key, value, flags);
        if (errno != 0)
            throw new BpfException("update map 'in-memory'", errno);
    }

    public List<TKey> GetKeys() => [.. _elements.Keys];

    public List<KeyValuePair<TKey, TValue>> LookupAll() => [.. _elements];

    public TValue[] LookupPerCpu(in TKey key)
        => PerCpu.TryGetValue(key, out TValue[]? values) ? values : throw new BpfException("look up a key in per-CPU map 'in-memory'", Errnos.ENOENT);

    public void UpdateBatch(ReadOnlySpan<TKey> keys, ReadOnlySpan<TValue> values)
    {
        UpdateBatchCalls++;
        if (keys.Length != values.Length)
            throw new ArgumentException("a batch needs one value per key", nameof(values));
        for (int i = 0; i < keys.Length; i++)
        {
            int errno = FailBatchWith is int injected && i == FailBatchAfter ? injected : Write(keys[i], values[i], MapUpdate.Any);
            if (errno != 0)
            {
                FailBatchWith = null;
                throw new BpfBatchException($"batch-update {keys.Length} elements of map 'in-memory'", errno, i);
            }
        }
    }

    public int DeletePresent(ReadOnlySpan<TKey> keys, ICollection<TKey>? absent = null)
    {
        int deleted = 0;
        foreach (TKey key in keys)
        {
            if (_elements.Remove(key))
                deleted++;
            else
                absent?.Add(key);
        }
        return deleted;
    }

    public void Dispose() => Disposed = true;

    private int Write(TKey key, TValue value, MapUpdate flags)
    {
        bool present = _elements.ContainsKey(key);
        if (flags == MapUpdate.NoExist && present)
            return Errnos.EEXIST;
        if (flags == MapUpdate.Exist && !present)
            return Errnos.ENOENT;
        if (!present && _elements.Count >= Capacity)
            return Errnos.E2BIG;
        _elements[key] = value;
        return 0;
    }
}
