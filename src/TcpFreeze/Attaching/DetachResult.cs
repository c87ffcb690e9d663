using System.Text;

namespace TcpFreeze;

/// <summary>What <see cref="TcpFreezer.Detach(FreezerOptions?)"/> removed.</summary>
/// <param name="Interfaces">Interfaces whose TcpFreeze programs were detached.</param>
/// <param name="PinsRemoved">Pins removed.</param>
/// <remarks>Thread safety: immutable; safe to share between threads.</remarks>
public sealed record DetachResult(IReadOnlyList<string> Interfaces, int PinsRemoved)
{
    private bool PrintMembers(StringBuilder builder)
    {
        builder.Items(nameof(Interfaces), Interfaces, first: true).Member(nameof(PinsRemoved), PinsRemoved);
        return true;
    }
}

