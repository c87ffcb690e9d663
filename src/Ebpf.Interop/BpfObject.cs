using System.Runtime.InteropServices;
using Interop;
using TcpFreeze.Native;

namespace TcpFreeze.Ebpf.Interop;

/// <summary>
/// A BPF ELF object opened by libbpf: its programs and maps, before and after load.
/// Programs and maps taken from it with <see cref="GetProgram"/> and <see cref="GetMap"/>
/// own duplicated descriptors, so they stay usable after this object is disposed.
/// </summary>
public sealed unsafe class BpfObject : IDisposable
{
    private nint _object;
    private readonly string _name;

    private BpfObject(nint obj, string name)
    {
        _object = obj;
        _name = name;
    }

    /// <summary>Whether <see cref="Load"/> has succeeded.</summary>
    public bool IsLoaded { get; private set; }

    /// <summary>Opens an ELF object from memory (libbpf needs the bytes only during this call).</summary>
    public static BpfObject Open(ReadOnlySpan<byte> elf, string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (elf.IsEmpty)
            throw new ArgumentException("The BPF object is empty.", nameof(elf));
        LibbpfLog.EnsureInstalled();
        nint objectName = Marshal.StringToCoTaskMemUTF8(name);
        try
        {
            var opts = new Libbpf.BpfObjectOpenOpts { Size = (nuint)sizeof(Libbpf.BpfObjectOpenOpts), ObjectName = objectName };
            using var capture = LibbpfLog.Capture();
            nint obj;
            fixed (byte* data = elf)
                obj = Libbpf.bpf_object__open_mem(data, (nuint)elf.Length, &opts);
            if (obj == 0)
                throw new BpfLoadException($"open BPF object '{name}'", Marshal.GetLastPInvokeError(), capture.Text);
            return new BpfObject(obj, name);
        }
        finally
        {
            Marshal.FreeCoTaskMem(objectName);
        }
    }

    /// <summary>Sets a map's capacity before <see cref="Load"/>.</summary>
    public void SetMaxEntries(string mapName, uint maxEntries)
    {
        nint map = FindMap(mapName);
        BpfException.Check(Libbpf.bpf_map__set_max_entries(map, maxEntries),
            $"set max_entries of map '{mapName}' to {maxEntries}", IsLoaded ? "max_entries can only change before the object is loaded" : null);
    }

    /// <summary>
    /// Makes the object use an existing map (e.g. one opened from a pin) instead of
    /// creating its own, so programs loaded now share state with programs loaded before.
    /// </summary>
    public void ReuseMap(string mapName, BpfMap existing)
    {
        ArgumentNullException.ThrowIfNull(existing);
        nint map = FindMap(mapName);
        using var fd = existing.Handle.Borrow();
        BpfException.Check(Libbpf.bpf_map__reuse_fd(map, fd.Fd), $"reuse map '{mapName}' (id {existing.Info.Id})",
            "the existing map's type, key size or value size differs from the object's definition");
    }

    /// <summary>Creates the maps and loads the programs into the kernel (the verifier runs here).</summary>
    /// <exception cref="BpfLoadException">Carries the verifier log when the kernel rejects a program.</exception>
    public void Load()
    {
        ThrowIfDisposed();
        using var capture = LibbpfLog.Capture();
        int result = Libbpf.bpf_object__load(_object);
        if (result < 0)
            throw new BpfLoadException($"load BPF object '{_name}'", -result, capture.Text);
        IsLoaded = true;
    }

    /// <summary>A loaded program, as an independently owned handle.</summary>
    public BpfProgram GetProgram(string programName)
    {
        ThrowIfNotLoaded();
        nint prog = Libbpf.bpf_object__find_program_by_name(_object, programName);
        if (prog == 0)
            throw new BpfException($"find program '{programName}' in BPF object '{_name}'", Errnos.ENOENT, "the object has no program of that name");
        int fd = Libbpf.bpf_program__fd(prog);
        BpfException.Check(fd, $"get descriptor of program '{programName}'");
        return new BpfProgram(new BpfFileDescriptor(Libc.Duplicate(fd, $"duplicate descriptor of program '{programName}'")));
    }

    /// <summary>A created map, as an independently owned handle.</summary>
    public BpfMap GetMap(string mapName)
    {
        ThrowIfNotLoaded();
        int fd = Libbpf.bpf_map__fd(FindMap(mapName));
        BpfException.Check(fd, $"get descriptor of map '{mapName}'");
        return BpfMap.FromDescriptor(new BpfFileDescriptor(Libc.Duplicate(fd, $"duplicate descriptor of map '{mapName}'")));
    }

    /// <summary>
    /// The layout of a struct as the compiler described it in the object's BTF: its
    /// size and each member's byte offset. Lets callers prove that their managed
    /// mirror of a kernel struct matches the C definition.
    /// </summary>
    public BtfStruct GetBtfStruct(string structName)
    {
        ThrowIfDisposed();
        const uint BtfKindStruct = 4;
        nint btf = Libbpf.bpf_object__btf(_object);
        if (btf == 0)
            throw new BpfException($"read BTF of BPF object '{_name}'", Errnos.ENODATA, "compile the object with -g so clang emits BTF");
        int id = Libbpf.btf__find_by_name_kind(btf, structName, BtfKindStruct);
        if (id < 0)
            throw BpfException.FromErrno($"find struct '{structName}' in the BTF of '{_name}'", -id);
        Libbpf.BtfType* type = Libbpf.btf__type_by_id(btf, (uint)id);
        int count = (int)(type->Info & 0xFFFF);
        bool bitfields = (type->Info & 0x8000_0000) != 0;
        var members = new List<BtfMember>(count);
        var member = (Libbpf.BtfMember*)(type + 1);
        for (int i = 0; i < count; i++, member++)
        {
            uint bitOffset = bitfields ? member->Offset & 0xFF_FFFF : member->Offset;
            string name = Marshal.PtrToStringUTF8(Libbpf.btf__name_by_offset(btf, member->NameOffset)) ?? string.Empty;
            members.Add(new BtfMember(name, (int)(bitOffset / 8)));
        }
        return new BtfStruct(structName, (int)type->SizeOrType, members);
    }

    private nint FindMap(string mapName)
    {
        ThrowIfDisposed();
        nint map = Libbpf.bpf_object__find_map_by_name(_object, mapName);
        if (map == 0)
            throw new BpfException($"find map '{mapName}' in BPF object '{_name}'", Errnos.ENOENT, "the object has no map of that name");
        return map;
    }

    private void ThrowIfNotLoaded()
    {
        ThrowIfDisposed();
        if (!IsLoaded)
            throw new InvalidOperationException($"BPF object '{_name}' is not loaded yet; call Load() first.");
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_object == 0, this);

    /// <summary>Closes libbpf's object; handles taken from it stay valid.</summary>
    public void Dispose()
    {
        nint obj = Interlocked.Exchange(ref _object, 0);
        if (obj != 0)
            Libbpf.bpf_object__close(obj);
    }
}
