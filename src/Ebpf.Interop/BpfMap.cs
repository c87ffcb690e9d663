using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Ebpf.Interop;

/// <summary>Flags for map updates (BPF_ANY, BPF_NOEXIST, BPF_EXIST).</summary>
public enum MapUpdate : ulong
{
    /// <summary>Create the element or replace it.</summary>
    Any = 0,
    /// <summary>Create the element only if the key is absent (EEXIST otherwise).</summary>
    NoExist = 1,
    /// <summary>Replace the element only if the key is present (ENOENT otherwise).</summary>
    Exist = 2,
}

/// <summary>
/// A BPF map, owned through a file descriptor. Raw operations take spans of bytes;
/// typed operations take unmanaged structs whose sizes are checked against the map's
/// definition on every call, so a layout mismatch fails loudly instead of
/// reading or writing the wrong bytes.
/// </summary>
public sealed unsafe class BpfMap : IDisposable
{
    private BpfMapInfo? _info;

    internal BpfMap(BpfFileDescriptor handle) => Handle = handle;

    /// <summary>The descriptor that keeps this map alive.</summary>
    public BpfFileDescriptor Handle { get; }

    /// <summary>The kernel's description of the map.</summary>
    public BpfMapInfo Info => _info ??= ReadInfo();

    /// <summary>Opens a map pinned in bpffs.</summary>
    public static BpfMap OpenPinned(string path)
    {
        LibbpfLog.EnsureInstalled();
        int fd = Libbpf.bpf_obj_get(path);
        BpfException.Check(fd, $"open pinned map {path}", fd == -Errnos.ENOENT ? "nothing is pinned there" : BpfFs.PinHint(path));
        var map = new BpfMap(new BpfFileDescriptor(fd));
        try
        {
            _ = map.Info; // fails for a pin that is not a map
        }
        catch (BpfException e)
        {
            map.Dispose();
            throw new BpfException($"open pinned map {path}", e.Errno, "the pin is not a map");
        }
        return map;
    }

    /// <summary>Opens a map by its kernel id (e.g. one of <see cref="BpfProgram.GetMapIds"/>); null when no map has that id.</summary>
    public static BpfMap? TryOpenById(uint id)
    {
        LibbpfLog.EnsureInstalled();
        int fd = Libbpf.bpf_map_get_fd_by_id(id);
        if (fd == -Errnos.ENOENT)
            return null;
        BpfException.Check(fd, $"open map id {id}");
        return new BpfMap(new BpfFileDescriptor(fd));
    }

    /// <summary>
    /// Creates a map outside any object (no BTF, default flags), e.g. for a small helper
    /// program loaded with <see cref="BpfProgram.Load"/>, which refers to it by descriptor.
    /// </summary>
    public static BpfMap Create(uint type, string name, int keySize, int valueSize, uint maxEntries)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(keySize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(valueSize);
        LibbpfLog.EnsureInstalled();
        int fd = Libbpf.bpf_map_create(type, name, (uint)keySize, (uint)valueSize, maxEntries, null);
        BpfException.Check(fd, $"create map '{name}' (type {type})");
        return new BpfMap(new BpfFileDescriptor(fd));
    }

    /// <summary>Pins the map at <paramref name="path"/> in bpffs, where it outlives this process.</summary>
    public void Pin(string path)
    {
        using var fd = Handle.Borrow();
        BpfException.Check(Libbpf.bpf_obj_pin(fd.Fd, path), $"pin map '{Info.Name}' at {path}", BpfFs.PinHint(path));
    }

    // ---------------- raw byte operations ----------------

    /// <summary>Looks up <paramref name="key"/>; false when absent.</summary>
    public bool TryLookup(ReadOnlySpan<byte> key, Span<byte> value)
    {
        CheckSizes(key.Length, value.Length, perCpu: false);
        using var fd = Handle.Borrow();
        fixed (byte* k = key)
        fixed (byte* v = value)
        {
            int result = Libbpf.bpf_map_lookup_elem(fd.Fd, k, v);
            if (result == -Errnos.ENOENT)
                return false;
            BpfException.Check(result, $"look up a key in map '{Info.Name}'");
            return true;
        }
    }

    /// <summary>Creates or replaces an element, as <paramref name="flags"/> says.</summary>
    public void Update(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, MapUpdate flags = MapUpdate.Any)
    {
        CheckSizes(key.Length, value.Length, perCpu: false);
        using var fd = Handle.Borrow();
        fixed (byte* k = key)
        fixed (byte* v = value)
            BpfException.Check(Libbpf.bpf_map_update_elem(fd.Fd, k, v, (ulong)flags), $"update map '{Info.Name}'", UpdateHint(-1));
    }

    /// <summary>Deletes <paramref name="key"/>; false when it was absent.</summary>
    public bool Delete(ReadOnlySpan<byte> key)
    {
        CheckSizes(key.Length, Info.ValueSize, perCpu: false);
        using var fd = Handle.Borrow();
        fixed (byte* k = key)
        {
            int result = Libbpf.bpf_map_delete_elem(fd.Fd, k);
            if (result == -Errnos.ENOENT)
                return false;
            BpfException.Check(result, $"delete from map '{Info.Name}'");
            return true;
        }
    }

    /// <summary>
    /// Writes into <paramref name="nextKey"/> the key after <paramref name="key"/>
    /// (the first key when <paramref name="key"/> is empty); false at the end.
    /// </summary>
    public bool TryGetNextKey(ReadOnlySpan<byte> key, Span<byte> nextKey)
    {
        if (nextKey.Length != Info.KeySize || (!key.IsEmpty && key.Length != Info.KeySize))
            throw SizeMismatch("key", key.IsEmpty ? nextKey.Length : key.Length, (int)Info.KeySize);
        using var fd = Handle.Borrow();
        fixed (byte* k = key)
        fixed (byte* n = nextKey)
        {
            int result = Libbpf.bpf_map_get_next_key(fd.Fd, key.IsEmpty ? null : k, n);
            if (result == -Errnos.ENOENT)
                return false;
            BpfException.Check(result, $"iterate map '{Info.Name}'");
            return true;
        }
    }

    // ---------------- typed operations ----------------

    /// <summary>Looks up <paramref name="key"/>; false when absent.</summary>
    public bool TryLookup<TKey, TValue>(in TKey key, out TValue value) where TKey : unmanaged where TValue : unmanaged
    {
        value = default;
        return TryLookup(AsBytes(in key), MemoryMarshal.AsBytes(new Span<TValue>(ref value)));
    }

    /// <summary>Creates or replaces an element.</summary>
    public void Update<TKey, TValue>(in TKey key, in TValue value, MapUpdate flags = MapUpdate.Any) where TKey : unmanaged where TValue : unmanaged
        => Update(AsBytes(in key), AsBytes(in value), flags);

    /// <summary>Deletes <paramref name="key"/>; false when it was absent.</summary>
    public bool Delete<TKey>(in TKey key) where TKey : unmanaged => Delete(AsBytes(in key));

    /// <summary>All keys, read with BPF_MAP_GET_NEXT_KEY (a snapshot that may miss concurrent changes).</summary>
    public List<TKey> GetKeys<TKey>() where TKey : unmanaged
    {
        CheckSizes(sizeof(TKey), Info.ValueSize, perCpu: false);
        var keys = new List<TKey>();
        TKey current = default, next = default;
        bool first = true;
        // Bounded: a map never holds more than max_entries keys; allow for churn.
        for (long i = 0; i <= 2L * Info.MaxEntries + 1; i++)
        {
            bool more = first
                ? TryGetNextKey(ReadOnlySpan<byte>.Empty, MemoryMarshal.AsBytes(new Span<TKey>(ref next)))
                : TryGetNextKey(AsBytes(in current), MemoryMarshal.AsBytes(new Span<TKey>(ref next)));
            if (!more)
                break;
            keys.Add(next);
            current = next;
            first = false;
        }
        return keys;
    }

    /// <summary>Whether the map has no key (one BPF_MAP_GET_NEXT_KEY call).</summary>
    public bool IsEmpty()
    {
        Span<byte> key = stackalloc byte[(int)Info.KeySize];
        return !TryGetNextKey(ReadOnlySpan<byte>.Empty, key);
    }

    /// <summary>
    /// Reads every element with BPF_MAP_LOOKUP_BATCH, a few thousand per system call
    /// (hash maps; a consistent view per bucket, not of the whole map).
    /// </summary>
    public List<KeyValuePair<TKey, TValue>> LookupAll<TKey, TValue>() where TKey : unmanaged where TValue : unmanaged
    {
        CheckSizes(sizeof(TKey), sizeof(TValue), perCpu: false);
        var result = new List<KeyValuePair<TKey, TValue>>();
        int chunk = (int)Math.Clamp(Info.MaxEntries, 64u, 4096u);
        var keys = new TKey[chunk];
        var values = new TValue[chunk];
        ulong inBatch = 0, outBatch = 0;
        bool first = true;
        var opts = new Libbpf.BpfMapBatchOpts { Size = (nuint)sizeof(Libbpf.BpfMapBatchOpts) };
        using var fd = Handle.Borrow();
        // Bounded: every round either returns elements or ends; ENOSPC grows the buffer (at most ~20 times).
        for (int round = 0; round < Info.MaxEntries + 64; round++)
        {
            uint count = (uint)keys.Length;
            int rc;
            fixed (TKey* k = keys)
            fixed (TValue* v = values)
                rc = Libbpf.bpf_map_lookup_batch(fd.Fd, first ? null : &inBatch, &outBatch, k, v, &count, &opts);
            if (rc == -Errnos.ENOSPC && count == 0)
            {
                // One bucket holds more elements than the buffer: grow it and retry.
                Array.Resize(ref keys, keys.Length * 2);
                Array.Resize(ref values, values.Length * 2);
                continue;
            }
            if (rc < 0 && rc != -Errnos.ENOENT)
                BpfException.Check(rc, $"batch-read map '{Info.Name}'");
            for (int i = 0; i < count; i++)
                result.Add(new KeyValuePair<TKey, TValue>(keys[i], values[i]));
            if (rc == -Errnos.ENOENT)
                break;
            inBatch = outBatch;
            first = false;
        }
        return result;
    }

    /// <summary>
    /// Creates or replaces many elements in one system call (BPF_MAP_UPDATE_BATCH;
    /// the kernel takes no NOEXIST/EXIST flag for batches). Elements are applied in
    /// order; on failure a <see cref="BpfBatchException"/> says how many were applied
    /// before the failing one.
    /// </summary>
    public void UpdateBatch<TKey, TValue>(ReadOnlySpan<TKey> keys, ReadOnlySpan<TValue> values)
        where TKey : unmanaged where TValue : unmanaged
    {
        if (keys.Length != values.Length)
            throw new ArgumentException($"{keys.Length} keys but {values.Length} values; a batch needs one value per key.", nameof(values));
        CheckSizes(sizeof(TKey), sizeof(TValue), perCpu: false);
        if (keys.IsEmpty)
            return;
        var opts = new Libbpf.BpfMapBatchOpts { Size = (nuint)sizeof(Libbpf.BpfMapBatchOpts) };
        uint count = (uint)keys.Length;
        using var fd = Handle.Borrow();
        fixed (TKey* k = keys)
        fixed (TValue* v = values)
        {
            int result = Libbpf.bpf_map_update_batch(fd.Fd, k, v, &count, &opts);
            if (result < 0)
                throw new BpfBatchException($"batch-update {keys.Length} elements of map '{Info.Name}'", -result, (int)Math.Min(count, (uint)keys.Length), UpdateHint(-result));
        }
    }

    /// <summary>
    /// Deletes many keys in one system call (BPF_MAP_DELETE_BATCH). Stops at the first
    /// absent key with a <see cref="BpfBatchException"/> (ENOENT) whose
    /// <see cref="BpfBatchException.Processed"/> is that key's index.
    /// </summary>
    public void DeleteBatch<TKey>(ReadOnlySpan<TKey> keys) where TKey : unmanaged
    {
        CheckSizes(sizeof(TKey), Info.ValueSize, perCpu: false);
        if (keys.IsEmpty)
            return;
        var opts = new Libbpf.BpfMapBatchOpts { Size = (nuint)sizeof(Libbpf.BpfMapBatchOpts) };
        uint count = (uint)keys.Length;
        using var fd = Handle.Borrow();
        fixed (TKey* k = keys)
        {
            int result = Libbpf.bpf_map_delete_batch(fd.Fd, k, &count, &opts);
            if (result < 0)
                throw new BpfBatchException($"batch-delete {keys.Length} keys of map '{Info.Name}'", -result, (int)Math.Min(count, (uint)keys.Length));
        }
    }

    /// <summary>
    /// Reads one key of a per-CPU map: one value per possible CPU.
    /// </summary>
    public TValue[] LookupPerCpu<TKey, TValue>(in TKey key) where TKey : unmanaged where TValue : unmanaged
    {
        if (!Info.IsPerCpu)
            throw new InvalidOperationException($"map '{Info.Name}' is not a per-CPU map");
        CheckSizes(sizeof(TKey), sizeof(TValue), perCpu: true);
        if (sizeof(TValue) % 8 != 0)
            throw new ArgumentException($"per-CPU values are read in 8-byte slots; {typeof(TValue).Name} is {sizeof(TValue)} bytes");
        var values = new TValue[BpfSystem.PossibleCpuCount];
        using var fd = Handle.Borrow();
        fixed (TKey* k = &key)
        fixed (TValue* v = values)
            BpfException.Check(Libbpf.bpf_map_lookup_elem(fd.Fd, k, v), $"look up a key in per-CPU map '{Info.Name}'");
        return values;
    }

    private static ReadOnlySpan<byte> AsBytes<T>(in T value) where T : unmanaged
        => MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in value));

    private void CheckSizes(int keySize, uint valueSize, bool perCpu) => CheckSizes(keySize, (int)valueSize, perCpu);

    private void CheckSizes(int keySize, int valueSize, bool perCpu)
    {
        BpfMapInfo info = Info;
        if (keySize != info.KeySize)
            throw SizeMismatch("key", keySize, (int)info.KeySize);
        if (!perCpu && valueSize != info.ValueSize)
            throw SizeMismatch("value", valueSize, (int)info.ValueSize);
    }

    private ArgumentException SizeMismatch(string what, int given, int expected)
        => new($"map '{Info.Name}' has {what}s of {expected} bytes but {given} bytes were given; the managed {what} type does not match the map's definition.");

    private string? UpdateHint(int errno) => errno switch
    {
        Errnos.E2BIG or Errnos.ENOSPC => $"map '{Info.Name}' is full ({Info.MaxEntries} entries)",
        Errnos.ENOMEM => "the kernel could not allocate the element (memory cgroup limit?)",
        Errnos.EEXIST => "the key already exists and the update asked for a new key only",
        _ => null,
    };

    private BpfMapInfo ReadInfo()
    {
        var info = new Libbpf.BpfMapInfo();
        uint length = (uint)sizeof(Libbpf.BpfMapInfo);
        using var fd = Handle.Borrow();
        BpfException.Check(Libbpf.bpf_obj_get_info_by_fd(fd.Fd, &info, &length), "read map info");
        return new BpfMapInfo(info.Id, info.Type, info.KeySize, info.ValueSize, info.MaxEntries, info.MapFlags, BpfProgram.CString(info.Name, 16));
    }

    /// <summary>Closes this process's descriptor; a pin keeps the map alive.</summary>
    public void Dispose() => Handle.Dispose();
}

/// <summary>A map's definition as the kernel reports it.</summary>
public sealed record BpfMapInfo(uint Id, uint Type, uint KeySize, uint ValueSize, uint MaxEntries, uint Flags, string Name)
{
    /// <summary>BPF_MAP_TYPE_HASH.</summary>
    public const uint HashType = 1;
    /// <summary>BPF_MAP_TYPE_ARRAY.</summary>
    public const uint ArrayType = 2;
    /// <summary>BPF_MAP_TYPE_PERCPU_ARRAY.</summary>
    public const uint PerCpuArrayType = 6;

    /// <summary>Whether lookups return one value per possible CPU.</summary>
    public bool IsPerCpu => Type is 5 or PerCpuArrayType or 10; // PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH
}

/// <summary>Facts about the running system that BPF users need.</summary>
public static class BpfSystem
{
    private static int s_possibleCpus;

    /// <summary>The number of possible CPUs (the length of a per-CPU map value).</summary>
    public static int PossibleCpuCount
    {
        get
        {
            if (s_possibleCpus == 0)
                s_possibleCpus = BpfException.Check(Libbpf.libbpf_num_possible_cpus(), "count possible CPUs");
            return s_possibleCpus;
        }
    }
}
