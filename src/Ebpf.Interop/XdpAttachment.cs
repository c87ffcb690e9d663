namespace TcpFreeze.Ebpf.Interop;

/// <summary>
/// An XDP program attached to an interface through netlink. Such an attachment is not
/// tied to any descriptor: it stays after the attaching process exits, until
/// <see cref="Detach"/> (or <see cref="Xdp.Detach"/> from another process) removes it.
/// </summary>
public sealed class XdpAttachment
{
    internal XdpAttachment(int ifIndex, uint programId, XdpMode mode, bool created)
    {
        IfIndex = ifIndex;
        ProgramId = programId;
        Mode = mode;
        Created = created;
    }

    /// <summary>The interface.</summary>
    public int IfIndex { get; }

    /// <summary>The attached program's id.</summary>
    public uint ProgramId { get; }

    /// <summary>The mode actually used (native or generic).</summary>
    public XdpMode Mode { get; }

    /// <summary>False when the program was already attached and this call changed nothing.</summary>
    public bool Created { get; }

    /// <summary>Detaches the program if it is still the one attached; false otherwise.</summary>
    public bool Detach() => Xdp.Detach(IfIndex, ProgramId);
}
