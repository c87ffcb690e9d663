using TcpFreeze.Native;

namespace TcpFreeze.Ebpf.Interop;

/// <summary>TC clsact hook and BPF filter management (bpf_tc_*).</summary>
public static unsafe class Tc
{
    private const uint ReplaceFlag = 1;

    /// <summary>
    /// Attaches <paramref name="program"/> as a direct-action filter at
    /// (<paramref name="handle"/>, <paramref name="priority"/>), creating the clsact
    /// qdisc if needed. Idempotent for the same program; a different program at that
    /// handle and priority is replaced only when <paramref name="replaceForeign"/> is true.
    /// </summary>
    public static TcAttachment Attach(BpfProgram program, int ifIndex, TcDirection direction, uint handle, uint priority, bool replaceForeign = false)
    {
        ArgumentNullException.ThrowIfNull(program);
        ArgumentOutOfRangeException.ThrowIfZero(handle);
        ArgumentOutOfRangeException.ThrowIfZero(priority);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(priority, 0xFFFFu);
        string name = NetworkInterfaceNames.GetName(ifIndex);
        string operation = $"attach TC {direction.ToString().ToLowerInvariant()} program '{program.Info.Name}' to {name}";
        var hook = Hook(ifIndex, direction);
        int created = Libbpf.bpf_tc_hook_create(&hook);
        if (created != -Errnos.EEXIST)
            BpfException.Check(created, $"create clsact qdisc on {name}");

        uint existing = Query(ifIndex, direction, handle, priority);
        if (existing == program.Info.Id)
            return new TcAttachment(ifIndex, direction, handle, priority, existing, created: false);
        if (existing != 0 && !replaceForeign)
            throw new BpfException(operation, Errnos.EEXIST,
                $"{name} already has TC program {Xdp.DescribeProgram(existing)} at handle 0x{handle:x} priority {priority}; refusing to replace it");

        using var fd = program.Handle.Borrow();
        var opts = new Libbpf.BpfTcOpts
        {
            Size = (nuint)sizeof(Libbpf.BpfTcOpts), ProgFd = fd.Fd, Handle = handle, Priority = priority,
            Flags = existing != 0 ? ReplaceFlag : 0,
        };
        BpfException.Check(Libbpf.bpf_tc_attach(&hook, &opts), operation);
        return new TcAttachment(ifIndex, direction, handle, priority, opts.ProgId, created: true);
    }

    /// <summary>The id of the program at (handle, priority), or 0 when there is no such filter.</summary>
    public static uint Query(int ifIndex, TcDirection direction, uint handle, uint priority)
    {
        var hook = Hook(ifIndex, direction);
        var opts = new Libbpf.BpfTcOpts { Size = (nuint)sizeof(Libbpf.BpfTcOpts), Handle = handle, Priority = priority };
        int result = Libbpf.bpf_tc_query(&hook, &opts);
        // ENOENT: no such filter; EINVAL: no clsact qdisc on the interface at all.
        if (result is -Errnos.ENOENT or -Errnos.EINVAL)
            return 0;
        BpfException.Check(result, $"query TC {direction.ToString().ToLowerInvariant()} filters of {NetworkInterfaceNames.GetName(ifIndex)}");
        return opts.ProgId;
    }

    /// <summary>
    /// Removes the filter at (handle, priority) if it runs <paramref name="expectedProgramId"/>
    /// (any program when null); false when there is no such filter or it runs another program.
    /// </summary>
    public static bool Detach(int ifIndex, TcDirection direction, uint handle, uint priority, uint? expectedProgramId)
    {
        uint existing = Query(ifIndex, direction, handle, priority);
        if (existing == 0 || (expectedProgramId is { } expected && existing != expected))
            return false;
        var hook = Hook(ifIndex, direction);
        var opts = new Libbpf.BpfTcOpts { Size = (nuint)sizeof(Libbpf.BpfTcOpts), Handle = handle, Priority = priority };
        int result = Libbpf.bpf_tc_detach(&hook, &opts);
        if (result == -Errnos.ENOENT)
            return false;
        BpfException.Check(result, $"detach TC {direction.ToString().ToLowerInvariant()} filter from {NetworkInterfaceNames.GetName(ifIndex)}");
        return true;
    }

    private static Libbpf.BpfTcHook Hook(int ifIndex, TcDirection direction)
        => new() { Size = (nuint)sizeof(Libbpf.BpfTcHook), IfIndex = ifIndex, AttachPoint = (uint)direction };
}
