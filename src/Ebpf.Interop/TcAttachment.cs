namespace TcpFreeze.Ebpf.Interop;

/// <summary>
/// A TC (clsact) BPF filter, identified by interface, direction, handle and priority.
/// Like XDP, it stays attached after the attaching process exits.
/// </summary>
public sealed class TcAttachment
{
    internal TcAttachment(int ifIndex, TcDirection direction, uint handle, uint priority, uint programId, bool created)
    {
        IfIndex = ifIndex;
        Direction = direction;
        Handle = handle;
        Priority = priority;
        ProgramId = programId;
        Created = created;
    }

    /// <summary>The interface.</summary>
    public int IfIndex { get; }
    /// <summary>The clsact hook.</summary>
    public TcDirection Direction { get; }
    /// <summary>The filter handle.</summary>
    public uint Handle { get; }
    /// <summary>The filter priority.</summary>
    public uint Priority { get; }
    /// <summary>The attached program's id.</summary>
    public uint ProgramId { get; }
    /// <summary>False when the program was already attached and this call changed nothing.</summary>
    public bool Created { get; }

    /// <summary>Removes the filter if it still runs this program; false otherwise.</summary>
    public bool Detach() => Tc.Detach(IfIndex, Direction, Handle, Priority, ProgramId);
}
