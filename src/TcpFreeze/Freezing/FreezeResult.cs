using System.Text;

namespace TcpFreeze;

/// <summary>What <see cref="TcpFreezer.Freeze"/> did.</summary>
/// <param name="ConnectionsFrozen">Connections newly frozen.</param>
/// <param name="EndpointsFrozen">Endpoints newly frozen.</param>
/// <param name="AlreadyFrozen">Keys that were frozen before (an entry whose lease had ended does not count); their lease was replaced by this call's.</param>
/// <remarks>Thread safety: immutable; safe to share between threads.</remarks>
public sealed record FreezeResult(int ConnectionsFrozen, int EndpointsFrozen, int AlreadyFrozen)
{
    private bool PrintMembers(StringBuilder builder)
    {
        builder.Member(nameof(ConnectionsFrozen), ConnectionsFrozen, first: true).Member(nameof(EndpointsFrozen), EndpointsFrozen)
            .Member(nameof(AlreadyFrozen), AlreadyFrozen).Member(nameof(ExpiredRemoved), ExpiredRemoved).Items(nameof(InterfacesAttached), InterfacesAttached);
        return true;
    }


    /// <summary>Entries whose lease had ended that this call deleted before writing (they no longer froze anything).</summary>
    public int ExpiredRemoved { get; init; }

    /// <summary>
    /// Interfaces that were up without TcpFreeze's programs (an interrupted attach, an
    /// interface added since) and that this call attached to, so that the freeze holds there too.
    /// </summary>
    public IReadOnlyList<string> InterfacesAttached { get; init; } = [];
}
