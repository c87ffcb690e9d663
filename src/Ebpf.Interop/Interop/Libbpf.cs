using System.Runtime.InteropServices;

namespace TcpFreeze.Ebpf.Interop;

/// <summary>
/// The libbpf 1.1 entry points this library binds, and the C layouts of the opts
/// structs they take. A test checks that libbpf.so.1 exports every import declared here
/// (LayoutTests.Every_libbpf_function_the_binding_declares_is_exported_by_libbpf_so_1), and
/// another that the opts structs match libbpf's headers, because binding is lazy and a
/// missing export would only show at its first call.
/// </summary>
internal static unsafe partial class Libbpf
{
    internal const string Library = "libbpf.so.1";

    // libbpf prints its warnings to stderr until a print callback is set; some calls
    // (a TC query on an interface without filters) warn about expected conditions. Set
    // ours before the first libbpf call of any kind, so a host process's stderr never
    // gets libbpf's text; LibbpfLog routes it to the configured logger instead.
    static Libbpf() => LibbpfLog.EnsureInstalled();

    // ---- objects ----
    [LibraryImport(Library, EntryPoint = "bpf_object__open_mem", SetLastError = true)]
    internal static partial nint bpf_object__open_mem(void* buffer, nuint size, BpfObjectOpenOpts* opts);

    [LibraryImport(Library, EntryPoint = "bpf_object__load")]
    internal static partial int bpf_object__load(nint obj);

    [LibraryImport(Library, EntryPoint = "bpf_object__close")]
    internal static partial void bpf_object__close(nint obj);

    [LibraryImport(Library, EntryPoint = "bpf_object__find_program_by_name", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint bpf_object__find_program_by_name(nint obj, string name);

    [LibraryImport(Library, EntryPoint = "bpf_object__find_map_by_name", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint bpf_object__find_map_by_name(nint obj, string name);

    [LibraryImport(Library, EntryPoint = "bpf_object__btf")]
    internal static partial nint bpf_object__btf(nint obj);

    [LibraryImport(Library, EntryPoint = "bpf_program__fd")]
    internal static partial int bpf_program__fd(nint prog);

    [LibraryImport(Library, EntryPoint = "bpf_map__fd")]
    internal static partial int bpf_map__fd(nint map);

    [LibraryImport(Library, EntryPoint = "bpf_map__set_max_entries")]
    internal static partial int bpf_map__set_max_entries(nint map, uint maxEntries);

    [LibraryImport(Library, EntryPoint = "bpf_map__reuse_fd")]
    internal static partial int bpf_map__reuse_fd(nint map, int fd);

    // ---- BTF ----
    [LibraryImport(Library, EntryPoint = "btf__find_by_name_kind", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int btf__find_by_name_kind(nint btf, string name, uint kind);

    [LibraryImport(Library, EntryPoint = "btf__type_by_id")]
    internal static partial BtfType* btf__type_by_id(nint btf, uint id);

    [LibraryImport(Library, EntryPoint = "btf__name_by_offset")]
    internal static partial nint btf__name_by_offset(nint btf, uint offset);

    // ---- raw bpf(2) wrappers ----
    [LibraryImport(Library, EntryPoint = "bpf_prog_load", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int bpf_prog_load(uint progType, string? name, string license, ulong* insns, nuint insnCount, BpfProgLoadOpts* opts);

    [LibraryImport(Library, EntryPoint = "bpf_map_create", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int bpf_map_create(uint mapType, string? name, uint keySize, uint valueSize, uint maxEntries, void* opts);

    [LibraryImport(Library, EntryPoint = "bpf_map_update_elem")]
    internal static partial int bpf_map_update_elem(int fd, void* key, void* value, ulong flags);

    [LibraryImport(Library, EntryPoint = "bpf_map_lookup_elem")]
    internal static partial int bpf_map_lookup_elem(int fd, void* key, void* value);

    [LibraryImport(Library, EntryPoint = "bpf_map_delete_elem")]
    internal static partial int bpf_map_delete_elem(int fd, void* key);

    [LibraryImport(Library, EntryPoint = "bpf_map_get_next_key")]
    internal static partial int bpf_map_get_next_key(int fd, void* key, void* nextKey);

    [LibraryImport(Library, EntryPoint = "bpf_map_update_batch")]
    internal static partial int bpf_map_update_batch(int fd, void* keys, void* values, uint* count, BpfMapBatchOpts* opts);

    [LibraryImport(Library, EntryPoint = "bpf_map_lookup_batch")]
    internal static partial int bpf_map_lookup_batch(int fd, void* inBatch, void* outBatch, void* keys, void* values, uint* count, BpfMapBatchOpts* opts);

    [LibraryImport(Library, EntryPoint = "bpf_map_delete_batch")]
    internal static partial int bpf_map_delete_batch(int fd, void* keys, uint* count, BpfMapBatchOpts* opts);

    [LibraryImport(Library, EntryPoint = "bpf_obj_pin", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int bpf_obj_pin(int fd, string path);

    [LibraryImport(Library, EntryPoint = "bpf_obj_get", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int bpf_obj_get(string path);

    [LibraryImport(Library, EntryPoint = "bpf_obj_get_info_by_fd")]
    internal static partial int bpf_obj_get_info_by_fd(int fd, void* info, uint* infoLength);

    [LibraryImport(Library, EntryPoint = "bpf_prog_get_fd_by_id")]
    internal static partial int bpf_prog_get_fd_by_id(uint id);

    [LibraryImport(Library, EntryPoint = "bpf_map_get_fd_by_id")]
    internal static partial int bpf_map_get_fd_by_id(uint id);

    [LibraryImport(Library, EntryPoint = "bpf_prog_test_run_opts")]
    internal static partial int bpf_prog_test_run_opts(int fd, BpfTestRunOpts* opts);

    [LibraryImport(Library, EntryPoint = "libbpf_num_possible_cpus")]
    internal static partial int libbpf_num_possible_cpus();

    // ---- links and iterators ----
    /// <summary>BPF_TRACE_ITER in enum bpf_attach_type.</summary>
    internal const int BPF_TRACE_ITER = 28;

    [LibraryImport(Library, EntryPoint = "bpf_link_create")]
    internal static partial int bpf_link_create(int progFd, int targetFd, int attachType, BpfLinkCreateOpts* opts);

    [LibraryImport(Library, EntryPoint = "bpf_iter_create")]
    internal static partial int bpf_iter_create(int linkFd);

    // ---- XDP ----
    [LibraryImport(Library, EntryPoint = "bpf_xdp_attach")]
    internal static partial int bpf_xdp_attach(int ifindex, int progFd, uint flags, BpfXdpAttachOpts* opts);

    [LibraryImport(Library, EntryPoint = "bpf_xdp_detach")]
    internal static partial int bpf_xdp_detach(int ifindex, uint flags, BpfXdpAttachOpts* opts);

    [LibraryImport(Library, EntryPoint = "bpf_xdp_query")]
    internal static partial int bpf_xdp_query(int ifindex, int flags, BpfXdpQueryOpts* opts);

    // ---- TC ----
    [LibraryImport(Library, EntryPoint = "bpf_tc_hook_create")]
    internal static partial int bpf_tc_hook_create(BpfTcHook* hook);

    [LibraryImport(Library, EntryPoint = "bpf_tc_attach")]
    internal static partial int bpf_tc_attach(BpfTcHook* hook, BpfTcOpts* opts);

    [LibraryImport(Library, EntryPoint = "bpf_tc_detach")]
    internal static partial int bpf_tc_detach(BpfTcHook* hook, BpfTcOpts* opts);

    [LibraryImport(Library, EntryPoint = "bpf_tc_query")]
    internal static partial int bpf_tc_query(BpfTcHook* hook, BpfTcOpts* opts);

    // ---- logging ----
    [LibraryImport(Library, EntryPoint = "libbpf_set_print")]
    internal static partial nint libbpf_set_print(delegate* unmanaged[Cdecl]<int, nint, nint, int> fn);

    // ---- layouts (sizes checked against libbpf 1.1's headers, see the tests) ----

    /// <summary>struct bpf_object_open_opts (80 bytes in libbpf 1.1).</summary>
    [StructLayout(LayoutKind.Explicit, Size = 80)]
    internal struct BpfObjectOpenOpts
    {
        [FieldOffset(0)] public nuint Size;
        [FieldOffset(8)] public nint ObjectName;
    }

    /// <summary>struct bpf_prog_load_opts (104 bytes in libbpf 1.1); only the log fields are used.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 104)]
    internal struct BpfProgLoadOpts
    {
        [FieldOffset(0)] public nuint Size;
        [FieldOffset(88)] public uint LogLevel;
        [FieldOffset(92)] public uint LogSize;
        [FieldOffset(96)] public byte* LogBuffer;
    }

    /// <summary>struct bpf_map_batch_opts.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct BpfMapBatchOpts
    {
        public nuint Size;
        public ulong ElemFlags;
        public ulong Flags;
    }

    /// <summary>struct bpf_test_run_opts.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct BpfTestRunOpts
    {
        public nuint Size;
        public void* DataIn;
        public void* DataOut;
        public uint DataSizeIn;
        public uint DataSizeOut;
        public void* CtxIn;
        public void* CtxOut;
        public uint CtxSizeIn;
        public uint CtxSizeOut;
        public uint RetVal;
        public int Repeat;
        public uint Duration;
        public uint Flags;
        public uint Cpu;
        public uint BatchSize;
    }

    /// <summary>struct bpf_link_create_opts (64 bytes in libbpf 1.1); only the iterator fields are used.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 64)]
    internal struct BpfLinkCreateOpts
    {
        [FieldOffset(0)] public nuint Size;
        [FieldOffset(16)] public void* IterInfo;
        [FieldOffset(24)] public uint IterInfoLength;
    }

    /// <summary>The task part of union bpf_iter_link_info: which task or process a task iterator walks (Linux 6.1).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct BpfIterTaskInfo
    {
        public uint Tid;
        public uint Pid;
        public uint PidFd;
    }

    /// <summary>struct bpf_xdp_attach_opts.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct BpfXdpAttachOpts
    {
        public nuint Size;
        public int OldProgFd;
        private readonly int _pad;
    }

    /// <summary>struct bpf_xdp_query_opts (libbpf 1.1: attach_mode is the last field).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct BpfXdpQueryOpts
    {
        public nuint Size;
        public uint ProgId;
        public uint DrvProgId;
        public uint HwProgId;
        public uint SkbProgId;
        public byte AttachMode;
        private readonly byte _pad0;
        private readonly short _pad1;
        private readonly int _pad2;
    }

    /// <summary>struct bpf_tc_hook.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct BpfTcHook
    {
        public nuint Size;
        public int IfIndex;
        public uint AttachPoint;
        public uint Parent;
        private readonly int _pad;
    }

    /// <summary>struct bpf_tc_opts.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct BpfTcOpts
    {
        public nuint Size;
        public int ProgFd;
        public uint Flags;
        public uint ProgId;
        public uint Handle;
        public uint Priority;
        private readonly int _pad;
    }

    /// <summary>The fixed head of struct btf_type.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct BtfType
    {
        public uint NameOffset;
        public uint Info;
        public uint SizeOrType;
    }

    /// <summary>struct btf_member, which follows a struct's btf_type.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct BtfMember
    {
        public uint NameOffset;
        public uint Type;
        public uint Offset;
    }

    /// <summary>
    /// The head of struct bpf_prog_info, up to and including name. The kernel fills
    /// map_ids (a user pointer) with up to nr_map_ids ids and sets nr_map_ids to how
    /// many the program uses.
    /// </summary>
    [StructLayout(LayoutKind.Explicit, Size = 80)]
    internal struct BpfProgInfo
    {
        [FieldOffset(0)] public uint Type;
        [FieldOffset(4)] public uint Id;
        [FieldOffset(52)] public uint NrMapIds;
        [FieldOffset(56)] public ulong MapIds;
        [FieldOffset(64)] public fixed byte Name[16];
    }

    /// <summary>The head of struct bpf_map_info, up to and including name.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 40)]
    internal struct BpfMapInfo
    {
        [FieldOffset(0)] public uint Type;
        [FieldOffset(4)] public uint Id;
        [FieldOffset(8)] public uint KeySize;
        [FieldOffset(12)] public uint ValueSize;
        [FieldOffset(16)] public uint MaxEntries;
        [FieldOffset(20)] public uint MapFlags;
        [FieldOffset(24)] public fixed byte Name[16];
    }
}
