namespace TcpFreeze;

/// <summary>What <see cref="TcpFreezer.RemoveDeadNamespaces"/> removed.</summary>
/// <param name="Directories">The pin directories of namespaces that no longer exist (removed, unless they held files TcpFreeze did not create).</param>
/// <param name="PinsRemoved">TcpFreeze's pins removed from them.</param>
public sealed record DeadNamespaceCleanup(IReadOnlyList<string> Directories, int PinsRemoved);
