using TcpFreeze.Native;

namespace TcpFreeze.Ebpf.Interop;

/// <summary>
/// A BPF map, owned through a file descriptor: open, create, pin, describe. Its definition
/// (<see cref="Info"/>) is read once, when the map is opened. Elements are read and written
/// through one typed path, <see cref="As{TKey, TValue}"/>, which checks the key and value
/// sizes against the definition once, as aya's <c>HashMap&lt;K, V&gt;</c> does when it is made.
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

    /// <summary>Whether the map has no key (one BPF_MAP_GET_NEXT_KEY call); needs no key type.</summary>
    public bool IsEmpty()
    {
        Span<byte> key = stackalloc byte[(int)Info.KeySize];
        using var fd = Handle.Borrow();
        fixed (byte* k = key)
        {
            int result = Libbpf.bpf_map_get_next_key(fd.Fd, null, k);
            if (result == -Errnos.ENOENT)
                return true;
            if (result < 0)
                throw new BpfException($"iterate map '{Info.Name}'", -result);
            return false;
        }
    }

    private void CheckSizes(int keySize, int valueSize, bool perCpu)
    {
        BpfMapInfo info = Info;
        if (keySize != info.KeySize)
            throw SizeMismatch("key", keySize, (int)info.KeySize);
        if (!perCpu && valueSize != info.ValueSize)
            throw SizeMismatch("value", valueSize, (int)info.ValueSize);
        if (perCpu && valueSize % 8 != 0)
            throw new ArgumentException($"per-CPU values are read in 8-byte slots; the value type is {valueSize} bytes");
    }

    private ArgumentException SizeMismatch(string what, int given, int expected)
        => new($"map '{Info.Name}' has {what}s of {expected} bytes but {given} bytes were given; the managed {what} type does not match the map's definition.");

    /// <summary>A remedy for a failed update; built only when the update failed.</summary>
    internal string? UpdateHint(int errno) => errno switch
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
