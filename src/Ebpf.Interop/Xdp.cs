using TcpFreeze.Native;

namespace TcpFreeze.Ebpf.Interop;

/// <summary>XDP attach, query and detach (bpf_xdp_attach/query/detach).</summary>
public static unsafe class Xdp
{
    private const uint UpdateIfNoExist = 1, SkbMode = 2, DrvMode = 4, Replace = 16;
    private const byte AttachedNone = 0, AttachedDrv = 1, AttachedSkb = 2, AttachedHw = 3, AttachedMulti = 4;

    /// <summary>What is attached to <paramref name="ifIndex"/>'s XDP hook.</summary>
    public static XdpStatus Query(int ifIndex)
    {
        var opts = new Libbpf.BpfXdpQueryOpts { Size = (nuint)sizeof(Libbpf.BpfXdpQueryOpts) };
        int result = Libbpf.bpf_xdp_query(ifIndex, 0, &opts);
        if (result < 0)
            throw new BpfException($"query XDP on {NetworkInterfaceNames.GetName(ifIndex)}", -result, NoDeviceHint(ifIndex));
        return opts.AttachMode switch
        {
            AttachedNone => new XdpStatus(ifIndex, 0, XdpMode.Auto),
            AttachedDrv => new XdpStatus(ifIndex, opts.DrvProgId, XdpMode.Native),
            AttachedSkb => new XdpStatus(ifIndex, opts.SkbProgId, XdpMode.Generic),
            AttachedMulti => opts.DrvProgId != 0 ? new XdpStatus(ifIndex, opts.DrvProgId, XdpMode.Native) : new XdpStatus(ifIndex, opts.SkbProgId, XdpMode.Generic),
            _ => new XdpStatus(ifIndex, opts.ProgId != 0 ? opts.ProgId : opts.HwProgId, XdpMode.Native),
        };
    }

    /// <summary>
    /// Attaches <paramref name="program"/> to <paramref name="ifIndex"/>. Attaching a
    /// program that is already there changes nothing. Another program already attached
    /// is never replaced unless <paramref name="replaceForeign"/> is true.
    /// </summary>
    /// <exception cref="BpfException">EEXIST when a foreign program is attached and replacing was not asked for.</exception>
    public static XdpAttachment Attach(BpfProgram program, int ifIndex, XdpMode mode = XdpMode.Auto, bool replaceForeign = false)
    {
        ArgumentNullException.ThrowIfNull(program);
        string name = NetworkInterfaceNames.GetName(ifIndex);
        string operation = $"attach XDP program '{program.Info.Name}' to {name}";
        XdpStatus current = Query(ifIndex);
        if (current.ProgramId == program.Info.Id)
            return new XdpAttachment(ifIndex, current.ProgramId, current.Mode, created: false);

        using var fd = program.Handle.Borrow();
        if (current.ProgramId != 0)
        {
            string foreign = DescribeProgram(current.ProgramId);
            if (!replaceForeign)
                throw new BpfException(operation, Errnos.EEXIST,
                    $"{name} already runs XDP program {foreign} in {current.Mode.ToString().ToLowerInvariant()} mode; refusing to replace it. " +
                    $"Remove it ('ip link set dev {name} xdp off') or ask to replace it explicitly");
            using BpfProgram? old = BpfProgram.TryOpenById(current.ProgramId);
            var opts = new Libbpf.BpfXdpAttachOpts { Size = (nuint)sizeof(Libbpf.BpfXdpAttachOpts), OldProgFd = old?.Handle.Value ?? -1 };
            uint flags = (current.Mode == XdpMode.Generic ? SkbMode : DrvMode) | (old is null ? 0 : Replace);
            BpfException.Check(Libbpf.bpf_xdp_attach(ifIndex, fd.Fd, flags, &opts), $"{operation} in place of {foreign}");
            return new XdpAttachment(ifIndex, program.Info.Id, current.Mode, created: true);
        }

        if (mode is XdpMode.Native or XdpMode.Auto)
        {
            int result = Libbpf.bpf_xdp_attach(ifIndex, fd.Fd, UpdateIfNoExist | DrvMode, null);
            if (result == 0)
                return new XdpAttachment(ifIndex, program.Info.Id, XdpMode.Native, created: true);
            if (mode == XdpMode.Native || result is not (-Errnos.EOPNOTSUPP or -Errnos.EINVAL or -Errnos.ENOTSUPP))
                throw new BpfException($"{operation} in native mode", -result, result == -Errnos.EOPNOTSUPP ? $"the driver of {name} has no native XDP; use generic mode" : NoDeviceHint(ifIndex));
        }
        int generic = Libbpf.bpf_xdp_attach(ifIndex, fd.Fd, UpdateIfNoExist | SkbMode, null);
        if (generic < 0)
            throw new BpfException($"{operation} in generic mode", -generic, NoDeviceHint(ifIndex));
        return new XdpAttachment(ifIndex, program.Info.Id, XdpMode.Generic, created: true);
    }

    /// <summary>
    /// Detaches the XDP program of <paramref name="ifIndex"/> if it is
    /// <paramref name="expectedProgramId"/> (atomically, with XDP_FLAGS_REPLACE), so
    /// a program someone else attached meanwhile is left alone. False when another
    /// program, or none, is attached.
    /// </summary>
    public static bool Detach(int ifIndex, uint expectedProgramId)
    {
        XdpStatus current = Query(ifIndex);
        if (current.ProgramId == 0 || current.ProgramId != expectedProgramId)
            return false;
        using BpfProgram? program = BpfProgram.TryOpenById(expectedProgramId);
        if (program is null)
            return false;
        var opts = new Libbpf.BpfXdpAttachOpts { Size = (nuint)sizeof(Libbpf.BpfXdpAttachOpts), OldProgFd = program.Handle.Value };
        uint flags = Replace | (current.Mode == XdpMode.Generic ? SkbMode : DrvMode);
        int result = Libbpf.bpf_xdp_detach(ifIndex, flags, &opts);
        if (result == -Errnos.EEXIST)
            return false; // replaced between our query and the detach
        BpfException.Check(result, $"detach XDP program {DescribeProgram(expectedProgramId)} from {NetworkInterfaceNames.GetName(ifIndex)}");
        return true;
    }

    internal static string DescribeProgram(uint id)
    {
        try
        {
            using BpfProgram? program = BpfProgram.TryOpenById(id);
            return program is null ? $"id {id}" : $"'{program.Info.Name}' (id {id})";
        }
        catch (BpfException)
        {
            return $"id {id}";
        }
    }

    private static string? NoDeviceHint(int ifIndex)
        => NetworkInterfaceNames.GetName(ifIndex).StartsWith("ifindex ", StringComparison.Ordinal)
            ? $"no interface has index {ifIndex} in this network namespace"
            : null;
}
