using System.Buffers.Binary;
using System.Net;
using System.Runtime.InteropServices;
using Interop;
using TcpFreeze.Ebpf.Interop;

namespace TcpFreeze;

/// <summary>
/// Lists the TCP sockets a process holds with a BPF task_file iterator (bpf/tcpfreeze_sockets.bpf.c): one read
/// returns every socket's endpoints, state, inode and network namespace, where the portable way costs a readlink
/// per descriptor and a sock_diag walk of the whole connection hash table. It needs Linux 6.1 (a task iterator
/// that takes a process) and the kernel's BTF; where either is missing, <see cref="TryGet"/> says null and
/// discovery keeps to /proc and sock_diag.
/// </summary>
/// <remarks>
/// Loading the program costs a few milliseconds, so a process loads it once and keeps it: the CRIU hook's agent
/// at start, others the first time they discover a tree with many descriptors (<see cref="WorthLoadingAbove"/>).
/// Thread safety: one loaded program serves concurrent walks (each walk has its own link and descriptor).
/// </remarks>
internal sealed class SocketIterator : IDisposable
{
    /// <summary>The embedded object's resource name.</summary>
    public const string ObjectResource = "TcpFreeze.tcpfreeze_sockets.bpf.o";

    /// <summary>The program's name in the object.</summary>
    public const string ProgramName = "tf_task_sockets";

    /// <summary>
    /// The size of struct tf_socket_record (bpf/tcpfreeze.h): inode (8), netns (4), fd (4), local and remote
    /// addresses (16 each), family, local port and remote port (2 each), state and a pad byte.
    /// </summary>
    public const int RecordSize = 56;

    /// <summary>
    /// A cold process loads the iterator for a tree with more descriptors than this in its root process: below it,
    /// the descriptor scan and the table walk together cost less than the load.
    /// </summary>
    public const int WorthLoadingAbove = 256;

    private static readonly Lock Gate = new();
    private static SocketIterator? _shared;
    private static string? _unavailable;

    private readonly BpfProgram _program;

    private SocketIterator(BpfProgram program) => _program = program;

    /// <summary>The process's loaded iterator, or null when none has been loaded (<see cref="TryGet"/> loads it).</summary>
    public static SocketIterator? IfLoaded => Volatile.Read(ref _shared);

    /// <summary>Why the iterator cannot be used here, once a load was tried and failed; null otherwise.</summary>
    public static string? Unavailable => Volatile.Read(ref _unavailable);

    /// <summary>
    /// The process's iterator, loaded on the first call; null when this kernel cannot run it (the reason is in
    /// <see cref="Unavailable"/>, and no later call tries again).
    /// </summary>
    public static SocketIterator? TryGet()
    {
        if (Volatile.Read(ref _shared) is { } loaded)
            return loaded;
        lock (Gate)
        {
            if (_shared is not null || _unavailable is not null)
                return _shared;
            _unavailable = KernelTooOld();
            if (_unavailable is null)
            {
                try
                {
                    Volatile.Write(ref _shared, Load());
                }
                catch (Exception e) when (e is BpfException or DllNotFoundException or EntryPointNotFoundException or InvalidOperationException)
                {
                    _unavailable = $"the socket iterator did not load: {e.Message}";
                }
            }
            return _shared;
        }
    }

    private static SocketIterator Load()
    {
        using Stream stream = typeof(SocketIterator).Assembly.GetManifestResourceStream(ObjectResource)
            ?? throw new InvalidOperationException($"the embedded BPF object '{ObjectResource}' is missing; the build did not compile bpf/tcpfreeze_sockets.bpf.c");
        byte[] elf = new byte[stream.Length];
        stream.ReadExactly(elf);
        // The program keeps its own descriptor; the object (and libbpf's copy of the ELF) can go.
        using BpfObject obj = BpfObject.Open(elf, "tcpfreeze_sockets");
        obj.Load();
        return new SocketIterator(obj.GetProgram(ProgramName));
    }

    /// <summary>
    /// Null on Linux 6.1 and later; before it the kernel ignores the process a task iterator is given and walks
    /// every task, which this reader does not filter.
    /// </summary>
    internal static string? KernelTooOld() => KernelTooOld(Environment.OSVersion.Version);

    /// <summary><see cref="KernelTooOld()"/> for kernel <paramref name="version"/>.</summary>
    internal static string? KernelTooOld(Version version)
        => version.Major > 6 || version.Major == 6 && version.Minor >= 1
            ? null
            : $"the kernel ({version.Major}.{version.Minor}) is older than 6.1, whose task iterators walk one process";

    /// <summary>
    /// The TCP sockets process <paramref name="pid"/> holds in the network namespace whose inode is
    /// <paramref name="netns"/>, added to <paramref name="entries"/> once per inode (<paramref name="seen"/>).
    /// False when the process is gone.
    /// </summary>
    public bool TryCollect(int pid, ulong netns, HashSet<ulong> seen, List<ProcNetTcpEntry> entries)
    {
        byte[] records;
        try
        {
            records = _program.ReadTaskIterator(pid);
        }
        catch (BpfException e) when (e.Errno == TcpFreeze.Native.Errnos.ESRCH)
        {
            return false;
        }
        Parse(records, netns, seen, entries);
        return true;
    }

    /// <summary>Parses the iterator's records (see <see cref="RecordSize"/>), keeping those of <paramref name="netns"/> (0: all).</summary>
    internal static void Parse(ReadOnlySpan<byte> records, ulong netns, HashSet<ulong> seen, List<ProcNetTcpEntry> entries)
    {
        for (int offset = 0; offset + RecordSize <= records.Length; offset += RecordSize)
        {
            ReadOnlySpan<byte> r = records.Slice(offset, RecordSize);
            ulong inode = BinaryPrimitives.ReadUInt64LittleEndian(r);
            uint socketNetns = BinaryPrimitives.ReadUInt32LittleEndian(r[8..]);
            ushort family = MemoryMarshal.Read<ushort>(r[48..]);
            if (netns != 0 && socketNetns != netns || !seen.Add(inode))
                continue;
            int addressLength = family == Libc.AF_INET ? 4 : family == Libc.AF_INET6 ? 16 : 0;
            if (addressLength == 0)
                continue;
            var local = new IPEndPoint(new IPAddress(r.Slice(16, addressLength)), MemoryMarshal.Read<ushort>(r[50..]));
            var remote = new IPEndPoint(new IPAddress(r.Slice(32, addressLength)), BinaryPrimitives.ReadUInt16BigEndian(r[52..]));
            entries.Add(new ProcNetTcpEntry(local, remote, (TcpSocketState)r[54], inode));
        }
    }

    /// <summary>The inode of process <paramref name="pid"/>'s network namespace, 0 when it cannot be read.</summary>
    public static ulong NetworkNamespaceOf(int pid) => Libc.GetTargetInode($"/proc/{pid}/ns/net");

    public void Dispose() => _program.Dispose();
}
