using TcpFreeze.Ebpf.Interop;

namespace TcpFreeze;

/// <summary>
/// A namespace's interfaces and their XDP and TC attach points (TC at TcpFreeze's handle and
/// priority), with the programs to put there: the seam between the attach rules of
/// <see cref="InterfaceAttacher"/> (what may be replaced, the ingress move after every interface
/// is attached, the exact rollback) and the kernel. <see cref="KernelAttachPoints"/> is the
/// real one; the unit tests put in-memory interfaces behind it. Called inside the namespace.
/// </summary>
internal interface IAttachPoints
{
    /// <summary>The namespace's interfaces.</summary>
    IReadOnlyList<NetworkInterfaceInfo> ListInterfaces();

    /// <summary>The kernel id of the program that <paramref name="definition"/> attaches.</summary>
    uint ProgramId(ProgramDefinition definition);

    /// <summary>The XDP program on an interface (0: none).</summary>
    uint QueryXdp(int ifIndex);

    /// <inheritdoc cref="Xdp.Attach"/>
    XdpAttachment AttachXdp(ProgramDefinition definition, int ifIndex, XdpMode mode, bool replace);

    /// <inheritdoc cref="Xdp.Detach"/>
    bool DetachXdp(int ifIndex, uint programId);

    /// <summary>The TC program at TcpFreeze's handle and priority (0: none).</summary>
    uint QueryTc(int ifIndex, TcDirection direction);

    /// <summary>Attaches a TC filter at TcpFreeze's handle and priority.</summary>
    TcAttachment AttachTc(ProgramDefinition definition, int ifIndex, TcDirection direction, bool replace);

    /// <summary>Detaches the TC filter at TcpFreeze's handle and priority if it is still <paramref name="programId"/>.</summary>
    bool DetachTc(int ifIndex, TcDirection direction, uint programId);
}

/// <summary>The kernel's attach points (netlink, through libbpf), with the programs <paramref name="programs"/> gives (none: detach and query only).</summary>
internal sealed class KernelAttachPoints(Func<ProgramDefinition, BpfProgram>? programs = null) : IAttachPoints
{
    public IReadOnlyList<NetworkInterfaceInfo> ListInterfaces() => NetworkInterfaceInfo.ListHere();

    public uint ProgramId(ProgramDefinition definition) => Program(definition).Info.Id;

    public uint QueryXdp(int ifIndex) => Xdp.Query(ifIndex).ProgramId;

    public XdpAttachment AttachXdp(ProgramDefinition definition, int ifIndex, XdpMode mode, bool replace)
        => Xdp.Attach(Program(definition), ifIndex, mode, replace);

    public bool DetachXdp(int ifIndex, uint programId) => Xdp.Detach(ifIndex, programId);

    public uint QueryTc(int ifIndex, TcDirection direction) => Tc.Query(ifIndex, direction, BpfNames.TcHandle, BpfNames.TcPriority);

    public TcAttachment AttachTc(ProgramDefinition definition, int ifIndex, TcDirection direction, bool replace)
        => Tc.Attach(Program(definition), ifIndex, direction, BpfNames.TcHandle, BpfNames.TcPriority, replace);

    public bool DetachTc(int ifIndex, TcDirection direction, uint programId)
        => Tc.Detach(ifIndex, direction, BpfNames.TcHandle, BpfNames.TcPriority, programId);

    private BpfProgram Program(ProgramDefinition definition)
        => (programs ?? throw new InvalidOperationException("these attach points were opened to query and detach only"))(definition);
}
