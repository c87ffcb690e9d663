using System.Text;

namespace TcpFreeze;

/// <summary>What <see cref="TcpFreezer.RemoveDeadNamespaces(string?, TimeSpan?)"/> removed.</summary>
/// <param name="Directories">The pin directories of namespaces that no longer exist (removed, unless they held files TcpFreeze did not create).</param>
/// <param name="PinsRemoved">TcpFreeze's pins removed from them.</param>
/// <remarks>Thread safety: immutable; safe to share between threads.</remarks>
public sealed record DeadNamespaceCleanup(IReadOnlyList<string> Directories, int PinsRemoved)
{
    private bool PrintMembers(StringBuilder builder)
    {
        builder.Items(nameof(Directories), Directories, first: true).Member(nameof(PinsRemoved), PinsRemoved);
        return true;
    }
}

