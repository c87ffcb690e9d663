using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TcpFreeze.Native;

namespace TcpFreeze.Ebpf.Interop;

/// <summary>
/// A BPF map, owned through a file descriptor. Its definition (<see cref="Info"/>) is
/// read once, when the map is opened. Raw operations take spans of bytes; generic
/// operations take unmanaged structs whose sizes are checked against the definition on
/// each call. For a map used with one key and value type, <see cref="As{TKey, TValue}"/>
/// gives a typed view that checks the sizes once.
/// </summary>
public sealed unsafe class BpfMap : IDisposable
{
    private BpfMap(BpfFileDescriptor handle, BpfMapInfo info)
    {
        Handle = handle;
        Info = info;
    }

    /// <summary>The descriptor that keeps this map alive.</summary>
    public BpfFileDescriptor Handle { get; }

    /// <summary>The kernel's description of the map, read when it was opened.</summary>
    public BpfMapInfo Info { get; }

    /// <summary>Wraps a descriptor, reading the map's definition; disposes the descriptor when that fails.</summary>
    internal static BpfMap FromDescriptor(BpfFileDescriptor handle, string? notAMap = null)
    {
        try
        {
            return new BpfMap(handle, ReadInfo(handle));
        }
        catch (BpfException e)
        {
            handle.Dispose();
            if (notAMap is null)
                throw;
            throw new BpfException(notAMap, e.Errno, "the pin is not a map");
        }
    }

    /// <summary>Opens a map pinned in bpffs.</summary>
    public static BpfMap OpenPinned(string path)
    {
        LibbpfLog.EnsureInstalled();
        int fd = Libbpf.bpf_obj_get(path);
        if (fd < 0)
            throw new BpfException($"open pinned map {path}", -fd, fd == -Errnos.ENOENT ? "nothing is pinned there" : BpfFs.PinHint(path));
        return FromDescriptor(new BpfFileDescriptor(fd), notAMap: $"open pinned map {path}");
    }

    /// <summary>Opens a map by its kernel id (e.g. one of <see cref="BpfProgram.GetMapIds"/>); null when no map has that id.</summary>
    public static BpfMap? TryOpenById(uint id)
    {
        LibbpfLog.EnsureInstalled();
        int fd = Libbpf.bpf_map_get_fd_by_id(id);
        if (fd == -Errnos.ENOENT)
            return null;
        if (fd < 0)
            throw new BpfException($"open map id {id}", -fd);
        return FromDescriptor(new BpfFileDescriptor(fd));
    }

    /// <summary>
    /// Creates a map outside any object (no BTF, default flags), e.g. for a small helper
    /// program loaded with <see cref="BpfProgram.Load"/>, which refers to it by descriptor.
    /// </summary>
    public static BpfMap Create(BpfMapType type, string name, int keySize, int valueSize, uint maxEntries)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(keySize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(valueSize);
        LibbpfLog.EnsureInstalled();
        int fd = Libbpf.bpf_map_create((uint)type, name, (uint)keySize, (uint)valueSize, maxEntries, null);
        if (fd < 0)
            throw new BpfException($"create map '{name}' ({type})", -fd);
        return FromDescriptor(new BpfFileDescriptor(fd));
    }

    /// <summary>
    /// A typed view of this map. The key and value sizes are checked against the map's
    /// definition here, once; every call through the view is then typed. The view shares
    /// this map's descriptor: disposing either closes it.
    /// </summary>
    /// <exception cref="ArgumentException">The types' sizes do not match the map's definition.</exception>
    public BpfMap<TKey, TValue> As<TKey, TValue>() where TKey : unmanaged where TValue : unmanaged
    {
        CheckSizes(sizeof(TKey), sizeof(TValue), Info.IsPerCpu);
        return new BpfMap<TKey, TValue>(this);
    }

    /// <summary>Pins the map at <paramref name="path"/> in bpffs, where it outlives this process.</summary>
    public void Pin(string path)
    {
        using var fd = Handle.Borrow();
        int result = Libbpf.bpf_obj_pin(fd.Fd, path);
        if (result < 0)
            throw new BpfException($"pin map '{Info.Name}' at {path}", -result, BpfFs.PinHint(path));
    }

    // ---------------- raw byte operations ----------------

    /// <summary>Looks up <paramref name="key"/>; false when absent.</summary>
    public bool TryLookup(ReadOnlySpan<byte> key, Span<byte> value)
    {
        CheckSizes(key.Length, value.Length, perCpu: false);
        return LookupUnchecked(key, value);
    }

    /// <summary>Creates or replaces an element, as <paramref name="flags"/> says.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026:Do not add multiple public overloads with optional parameters",
        Justification = "The byte and the typed overloads differ in their required parameters; one typed path is issue 23's item 7.")]
    public void Update(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, MapUpdate flags = MapUpdate.Any)
    {
        CheckSizes(key.Length, value.Length, perCpu: false);
        UpdateUnchecked(key, value, flags);
    }

    /// <summary>Deletes <paramref name="key"/>; false when it was absent.</summary>
    public bool Delete(ReadOnlySpan<byte> key)
    {
        CheckSizes(key.Length, (int)Info.ValueSize, perCpu: false);
        return DeleteUnchecked(key);
    }

    /// <summary>
    /// Writes into <paramref name="nextKey"/> the key after <paramref name="key"/>
    /// (the first key when <paramref name="key"/> is empty); false at the end.
    /// </summary>
    public bool TryGetNextKey(ReadOnlySpan<byte> key, Span<byte> nextKey)
    {
        if (nextKey.Length != Info.KeySize || (!key.IsEmpty && key.Length != Info.KeySize))
            throw SizeMismatch("key", key.IsEmpty ? nextKey.Length : key.Length, (int)Info.KeySize);
        return NextKeyUnchecked(key, nextKey);
    }

    /// <summary>Whether the map has no key (one BPF_MAP_GET_NEXT_KEY call).</summary>
    public bool IsEmpty()
    {
        Span<byte> key = stackalloc byte[(int)Info.KeySize];
        return !NextKeyUnchecked(ReadOnlySpan<byte>.Empty, key);
    }

    // ---------------- generic operations (sizes checked on each call) ----------------

    /// <summary>Looks up <paramref name="key"/>; false when absent.</summary>
    public bool TryLookup<TKey, TValue>(in TKey key, out TValue value) where TKey : unmanaged where TValue : unmanaged
    {
        value = default;
        return TryLookup(AsBytes(in key), MemoryMarshal.AsBytes(new Span<TValue>(ref value)));
    }

    /// <summary>Creates or replaces an element.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026:Do not add multiple public overloads with optional parameters",
        Justification = "The byte and the typed overloads differ in their required parameters; one typed path is issue 23's item 7.")]
    public void Update<TKey, TValue>(in TKey key, in TValue value, MapUpdate flags = MapUpdate.Any) where TKey : unmanaged where TValue : unmanaged
        => Update(AsBytes(in key), AsBytes(in value), flags);

    /// <summary>Deletes <paramref name="key"/>; false when it was absent.</summary>
    public bool Delete<TKey>(in TKey key) where TKey : unmanaged => Delete(AsBytes(in key));

    /// <summary>All keys, read with BPF_MAP_GET_NEXT_KEY (a snapshot that may miss concurrent changes).</summary>
    public List<TKey> GetKeys<TKey>() where TKey : unmanaged
    {
        CheckSizes(sizeof(TKey), (int)Info.ValueSize, perCpu: false);
        return GetKeysUnchecked<TKey>();
    }

    /// <summary>
    /// Reads every element with BPF_MAP_LOOKUP_BATCH, a few thousand per system call
    /// (hash maps; a consistent view per bucket, not of the whole map).
    /// </summary>
    public List<KeyValuePair<TKey, TValue>> LookupAll<TKey, TValue>() where TKey : unmanaged where TValue : unmanaged
    {
        CheckSizes(sizeof(TKey), sizeof(TValue), perCpu: false);
        return LookupAllUnchecked<TKey, TValue>();
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
        CheckSizes(sizeof(TKey), sizeof(TValue), perCpu: false);
        UpdateBatchUnchecked(keys, values);
    }

    /// <summary>
    /// Deletes many keys in one system call (BPF_MAP_DELETE_BATCH). The kernel stops at
    /// the first absent key: the result then has <see cref="BpfBatchResult.Errno"/>
    /// ENOENT and <see cref="BpfBatchResult.Processed"/> that key's index. An absent key
    /// is not an exception; any other failure is a <see cref="BpfBatchException"/>.
    /// </summary>
    public BpfBatchResult DeleteBatch<TKey>(ReadOnlySpan<TKey> keys) where TKey : unmanaged
    {
        CheckSizes(sizeof(TKey), (int)Info.ValueSize, perCpu: false);
        return DeleteBatchUnchecked(keys);
    }

    /// <summary>Reads one key of a per-CPU map: one value per possible CPU.</summary>
    public TValue[] LookupPerCpu<TKey, TValue>(in TKey key) where TKey : unmanaged where TValue : unmanaged
    {
        CheckSizes(sizeof(TKey), sizeof(TValue), perCpu: true);
        return LookupPerCpuUnchecked<TKey, TValue>(in key);
    }

    // ---------------- the system calls, sizes already checked ----------------

    internal bool LookupUnchecked(ReadOnlySpan<byte> key, Span<byte> value)
    {
        using var fd = Handle.Borrow();
        fixed (byte* k = key)
        fixed (byte* v = value)
        {
            int result = Libbpf.bpf_map_lookup_elem(fd.Fd, k, v);
            if (result == -Errnos.ENOENT)
                return false;
            if (result < 0)
                throw new BpfException($"look up a key in map '{Info.Name}'", -result);
            return true;
        }
    }

    internal void UpdateUnchecked(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, MapUpdate flags)
    {
        using var fd = Handle.Borrow();
        fixed (byte* k = key)
        fixed (byte* v = value)
        {
            int result = Libbpf.bpf_map_update_elem(fd.Fd, k, v, (ulong)flags);
            if (result < 0)
                throw new BpfException($"update map '{Info.Name}'", -result, UpdateHint(-result));
        }
    }

    internal bool DeleteUnchecked(ReadOnlySpan<byte> key)
    {
        using var fd = Handle.Borrow();
        fixed (byte* k = key)
        {
            int result = Libbpf.bpf_map_delete_elem(fd.Fd, k);
            if (result == -Errnos.ENOENT)
                return false;
            if (result < 0)
                throw new BpfException($"delete from map '{Info.Name}'", -result);
            return true;
        }
    }

    private bool NextKeyUnchecked(ReadOnlySpan<byte> key, Span<byte> nextKey)
    {
        using var fd = Handle.Borrow();
        fixed (byte* k = key)
        fixed (byte* n = nextKey)
        {
            int result = Libbpf.bpf_map_get_next_key(fd.Fd, key.IsEmpty ? null : k, n);
            if (result == -Errnos.ENOENT)
                return false;
            if (result < 0)
                throw new BpfException($"iterate map '{Info.Name}'", -result);
            return true;
        }
    }

    internal List<TKey> GetKeysUnchecked<TKey>() where TKey : unmanaged
    {
        var keys = new List<TKey>();
        TKey current = default, next = default;
        bool first = true;
        // Bounded: a map never holds more than max_entries keys; allow for churn.
        for (long i = 0; i <= 2L * Info.MaxEntries + 1; i++)
        {
            bool more = NextKeyUnchecked(first ? ReadOnlySpan<byte>.Empty : AsBytes(in current), MemoryMarshal.AsBytes(new Span<TKey>(ref next)));
            if (!more)
                break;
            keys.Add(next);
            current = next;
            first = false;
        }
        return keys;
    }

    internal List<KeyValuePair<TKey, TValue>> LookupAllUnchecked<TKey, TValue>() where TKey : unmanaged where TValue : unmanaged
    {
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
                throw new BpfException($"batch-read map '{Info.Name}'", -rc);
            for (int i = 0; i < count; i++)
                result.Add(new KeyValuePair<TKey, TValue>(keys[i], values[i]));
            if (rc == -Errnos.ENOENT)
                break;
            inBatch = outBatch;
            first = false;
        }
        return result;
    }

    internal void UpdateBatchUnchecked<TKey, TValue>(ReadOnlySpan<TKey> keys, ReadOnlySpan<TValue> values)
        where TKey : unmanaged where TValue : unmanaged
    {
        if (keys.Length != values.Length)
            throw new ArgumentException($"{keys.Length} keys but {values.Length} values; a batch needs one value per key.", nameof(values));
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

    internal BpfBatchResult DeleteBatchUnchecked<TKey>(ReadOnlySpan<TKey> keys) where TKey : unmanaged
    {
        if (keys.IsEmpty)
            return new BpfBatchResult(0, 0);
        var opts = new Libbpf.BpfMapBatchOpts { Size = (nuint)sizeof(Libbpf.BpfMapBatchOpts) };
        uint count = (uint)keys.Length;
        using var fd = Handle.Borrow();
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

    internal TValue[] LookupPerCpuUnchecked<TKey, TValue>(in TKey key) where TKey : unmanaged where TValue : unmanaged
    {
        var values = new TValue[BpfSystem.PossibleCpuCount];
        using var fd = Handle.Borrow();
        fixed (TKey* k = &key)
        fixed (TValue* v = values)
        {
            int result = Libbpf.bpf_map_lookup_elem(fd.Fd, k, v);
            if (result < 0)
                throw new BpfException($"look up a key in per-CPU map '{Info.Name}'", -result);
        }
        return values;
    }

    internal static ReadOnlySpan<byte> AsBytes<T>(in T value) where T : unmanaged
        => MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in value));

    private void CheckSizes(int keySize, int valueSize, bool perCpu)
    {
        BpfMapInfo info = Info;
        if (keySize != info.KeySize)
            throw SizeMismatch("key", keySize, (int)info.KeySize);
        if (!perCpu && valueSize != info.ValueSize)
            throw SizeMismatch("value", valueSize, (int)info.ValueSize);
        if (perCpu)
        {
            if (!info.IsPerCpu)
                throw new InvalidOperationException($"map '{info.Name}' is not a per-CPU map");
            if (valueSize % 8 != 0)
                throw new ArgumentException($"per-CPU values are read in 8-byte slots; the value type is {valueSize} bytes");
        }
    }

    private ArgumentException SizeMismatch(string what, int given, int expected)
        => new($"map '{Info.Name}' has {what}s of {expected} bytes but {given} bytes were given; the managed {what} type does not match the map's definition.");

    /// <summary>A remedy for a failed update; built only when the update failed.</summary>
    private string? UpdateHint(int errno) => errno switch
    {
        Errnos.E2BIG or Errnos.ENOSPC => $"map '{Info.Name}' is full ({Info.MaxEntries} entries)",
        Errnos.ENOMEM => "the kernel could not allocate the element (memory cgroup limit?)",
        Errnos.EEXIST => "the key already exists and the update asked for a new key only",
        _ => null,
    };

    private static BpfMapInfo ReadInfo(BpfFileDescriptor handle)
    {
        var info = new Libbpf.BpfMapInfo();
        uint length = (uint)sizeof(Libbpf.BpfMapInfo);
        using var fd = handle.Borrow();
        BpfException.Check(Libbpf.bpf_obj_get_info_by_fd(fd.Fd, &info, &length), "read map info");
        return new BpfMapInfo(info.Id, (BpfMapType)info.Type, info.KeySize, info.ValueSize, info.MaxEntries, info.MapFlags, NativeString.FromFixed(info.Name, 16));
    }

    /// <summary>Closes this process's descriptor; a pin keeps the map alive.</summary>
    public void Dispose() => Handle.Dispose();
}
