using System.Runtime.InteropServices;
using System.Text;
using Interop;
using TcpFreeze.Native;

namespace TcpFreeze.Ebpf.Interop;

/// <summary>A loaded BPF program, owned through a file descriptor.</summary>
public sealed unsafe class BpfProgram : IDisposable
{
    private BpfProgramInfo? _info;

    internal BpfProgram(BpfFileDescriptor handle) => Handle = handle;

    /// <summary>The descriptor that keeps this program loaded.</summary>
    public BpfFileDescriptor Handle { get; }

    /// <summary>The kernel's identity of the program (id, name, type).</summary>
    public BpfProgramInfo Info => _info ??= ReadInfo(Handle);

    /// <summary>Opens a program pinned in bpffs.</summary>
    public static BpfProgram OpenPinned(string path)
    {
        LibbpfLog.EnsureInstalled();
        int fd = Libbpf.bpf_obj_get(path);
        BpfException.Check(fd, $"open pinned program {path}", fd == -Errnos.ENOENT ? "nothing is pinned there" : null);
        var program = new BpfProgram(new BpfFileDescriptor(fd));
        if (program.Info.Type == BpfProgramType.Unspecified)
            throw new BpfException($"open pinned program {path}: the pin is not a program");
        return program;
    }

    /// <summary>Opens a loaded program by its kernel id; null when no program has that id.</summary>
    public static BpfProgram? TryOpenById(uint id)
    {
        int fd = Libbpf.bpf_prog_get_fd_by_id(id);
        if (fd == -Errnos.ENOENT)
            return null;
        BpfException.Check(fd, $"open program id {id}");
        return new BpfProgram(new BpfFileDescriptor(fd));
    }

    /// <summary>
    /// Loads a program from raw instructions (no ELF, no maps). Useful for small
    /// helper programs and for tests that need a program that is not ours.
    /// </summary>
    public static BpfProgram Load(BpfProgramType type, string name, ReadOnlySpan<ulong> instructions, string license = "Dual MIT/GPL")
    {
        LibbpfLog.EnsureInstalled();
        // With a log buffer and log level 0, libbpf retries a rejected load with logging on,
        // so the verifier's reasons come back only when they are needed.
        byte[] log = new byte[1 << 16];
        int fd;
        fixed (ulong* insns = instructions)
        fixed (byte* logBuffer = log)
        {
            var opts = new Libbpf.BpfProgLoadOpts { Size = (nuint)sizeof(Libbpf.BpfProgLoadOpts), LogBuffer = logBuffer, LogSize = (uint)log.Length };
            fd = Libbpf.bpf_prog_load((uint)type, name, license, insns, (nuint)instructions.Length, &opts);
        }
        if (fd < 0)
        {
            int end = Array.IndexOf(log, (byte)0);
            throw new BpfLoadException($"load {type} program '{name}'", -fd, Encoding.UTF8.GetString(log, 0, end < 0 ? log.Length : end));
        }
        return new BpfProgram(new BpfFileDescriptor(fd));
    }

    /// <summary>Pins the program at <paramref name="path"/> in bpffs, where it outlives this process.</summary>
    public void Pin(string path)
    {
        using var fd = Handle.Borrow();
        int result = Libbpf.bpf_obj_pin(fd.Fd, path);
        if (result < 0)
            throw new BpfException($"pin program '{Info.Name}' at {path}", -result, BpfFs.PinHint(path));
    }

    /// <summary>
    /// Runs the program once per repetition on <paramref name="packet"/> in the kernel
    /// (BPF_PROG_TEST_RUN), returning its verdict and the mean time per run.
    /// </summary>
    /// <param name="packet">The packet, starting with its Ethernet header.</param>
    /// <param name="repeat">How many times to run it (the duration is the mean).</param>
    /// <param name="context">Optional context in (e.g. a struct __sk_buff to set the mark of a TC test run).</param>
    public BpfTestRunResult TestRun(ReadOnlySpan<byte> packet, int repeat = 1, ReadOnlySpan<byte> context = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(repeat, 1);
        byte[] output = new byte[packet.Length + 256];
        using var fd = Handle.Borrow();
        fixed (byte* dataIn = packet)
        fixed (byte* dataOut = output)
        fixed (byte* ctxIn = context)
        {
            var opts = new Libbpf.BpfTestRunOpts
            {
                Size = (nuint)sizeof(Libbpf.BpfTestRunOpts),
                DataIn = dataIn,
                DataSizeIn = (uint)packet.Length,
                DataOut = dataOut,
                DataSizeOut = (uint)output.Length,
                Repeat = repeat,
                CtxIn = context.IsEmpty ? null : ctxIn,
                CtxSizeIn = (uint)context.Length,
            };
            BpfException.Check(Libbpf.bpf_prog_test_run_opts(fd.Fd, &opts), $"test-run program '{Info.Name}' on a {packet.Length}-byte packet",
                packet.Length < 14 ? "XDP and TC test runs need at least an Ethernet header (14 bytes)" : null);
            return new BpfTestRunResult(opts.RetVal, TimeSpan.FromTicks(opts.Duration / 100), (int)opts.Duration,
                output.AsSpan(0, (int)Math.Min(opts.DataSizeOut, (uint)output.Length)).ToArray());
        }
    }

    /// <summary>
    /// Runs this task iterator program (SEC("iter/task_file") or another iter/task_* target) over the tasks of
    /// process <paramref name="pid"/>, and returns what it wrote (bpf_seq_write, bpf_seq_printf). Each call is one
    /// walk: a link with the process as parameter, an iterator descriptor read to its end, both closed again.
    /// The kernel walks only that process from Linux 6.1; earlier kernels ignore the parameter and walk every
    /// task, so a program that serves them must write which task each record is from.
    /// </summary>
    /// <param name="pid">The process, in the caller's PID namespace.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="pid"/> is not positive.</exception>
    /// <exception cref="BpfException">The link or the iterator cannot be made (ESRCH: no such process; EINVAL: not an
    /// iterator program, or a kernel without task iterators), or reading it fails.</exception>
    public byte[] ReadTaskIterator(int pid)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pid);
        var task = new Libbpf.BpfIterTaskInfo { Pid = (uint)pid };
        var opts = new Libbpf.BpfLinkCreateOpts { Size = (nuint)sizeof(Libbpf.BpfLinkCreateOpts), IterInfo = &task, IterInfoLength = (uint)sizeof(Libbpf.BpfIterTaskInfo) };
        int linkFd;
        using (var fd = Handle.Borrow())
            linkFd = Libbpf.bpf_link_create(fd.Fd, 0, Libbpf.BPF_TRACE_ITER, &opts);
        using var link = new BpfFileDescriptor(BpfException.Check(linkFd, pid, static (pid, errno) => ($"make an iterator link over process {pid}",
            errno switch
            {
                Errnos.ESRCH => "no such process (it may have exited)",
                Errnos.EINVAL => "the program is not a task iterator, or the kernel has no per-process task iterators (Linux 6.1)",
                _ => null,
            })));
        int iterFd;
        using (var fd = link.Borrow())
            iterFd = Libbpf.bpf_iter_create(fd.Fd);
        using var iterator = new BpfFileDescriptor(BpfException.Check(iterFd, $"open an iterator over process {pid}"));
        using var borrowed = iterator.Borrow();
        byte[] buffer = new byte[16 * 1024];
        int length = 0;
        // Each read returns what the program wrote for some tasks' files, 0 at the end; the bound only guards
        // against an iterator that never ends (the kernel ends every walk).
        for (int reads = 0; reads < 1_000_000; reads++)
        {
            if (buffer.Length - length < 4096)
                Array.Resize(ref buffer, buffer.Length * 2);
            nint got;
            fixed (byte* at = &buffer[length])
                got = Libc.read(borrowed.Fd, at, (nuint)(buffer.Length - length));
            if (got == 0)
                return buffer.AsSpan(0, length).ToArray();
            if (got < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Errnos.EINTR)
                    continue;
                throw new BpfException($"read the iterator over process {pid}", errno);
            }
            length += (int)got;
        }
        throw new BpfException($"read the iterator over process {pid}: it did not end");
    }

    /// <summary>
    /// The ids of the maps the program uses, as the kernel reports them
    /// (bpf_obj_get_info_by_fd with map_ids); open one with <see cref="BpfMap.TryOpenById"/>.
    /// A loaded program keeps its maps alive, so this reaches them even when no pin does.
    /// </summary>
    public uint[] GetMapIds()
    {
        using var fd = Handle.Borrow();
        // The kernel says how many ids there are; a second call fetches them. The count
        // of a loaded program never changes, but the loop is bounded all the same.
        uint[] ids = [];
        for (int attempt = 0; attempt < 3; attempt++)
        {
            var info = new Libbpf.BpfProgInfo();
            uint length = (uint)sizeof(Libbpf.BpfProgInfo);
            fixed (uint* buffer = ids)
            {
                info.NrMapIds = (uint)ids.Length;
                info.MapIds = (ulong)buffer;
                BpfException.Check(Libbpf.bpf_obj_get_info_by_fd(fd.Fd, &info, &length), $"read the map ids of program {Info.Id}");
            }
            if (info.NrMapIds <= ids.Length)
                return ids.AsSpan(0, (int)info.NrMapIds).ToArray();
            ids = new uint[info.NrMapIds];
        }
        throw new BpfException($"read the map ids of program {Info.Id}: the count kept changing");
    }

    internal static BpfProgramInfo ReadInfo(BpfFileDescriptor handle)
    {
        var info = new Libbpf.BpfProgInfo();
        uint length = (uint)sizeof(Libbpf.BpfProgInfo);
        using var fd = handle.Borrow();
        BpfException.Check(Libbpf.bpf_obj_get_info_by_fd(fd.Fd, &info, &length), "read program info");
        return new BpfProgramInfo(info.Id, (BpfProgramType)info.Type, NativeString.FromFixed(info.Name, 16));
    }

    /// <summary>Closes this process's descriptor; pins and attachments keep the program loaded.</summary>
    public void Dispose() => Handle.Dispose();
}
