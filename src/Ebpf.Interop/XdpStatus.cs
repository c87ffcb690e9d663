namespace TcpFreeze.Ebpf.Interop;

/// <summary>What is attached to an interface's XDP hook.</summary>
/// <param name="IfIndex">The interface.</param>
/// <param name="ProgramId">The attached program's id, 0 when none.</param>
/// <param name="Mode">The mode it runs in (meaningless when <paramref name="ProgramId"/> is 0).</param>
public sealed record XdpStatus(int IfIndex, uint ProgramId, XdpMode Mode);
