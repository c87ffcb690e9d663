namespace TcpFreeze;

/// <summary>A TcpFreeze program found attached to an interface.</summary>
/// <param name="Interface">The interface's name.</param>
/// <param name="AttachPoint">Where on it.</param>
/// <param name="ProgramId">The kernel's program id.</param>
/// <remarks>Thread safety: immutable; safe to share between threads.</remarks>
public sealed record AttachedProgram(string Interface, ProgramAttachPoint AttachPoint, uint ProgramId);
