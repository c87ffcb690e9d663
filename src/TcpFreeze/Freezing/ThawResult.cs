using System.Text;

namespace TcpFreeze;

/// <summary>What <see cref="TcpFreezer.Thaw"/> did.</summary>
/// <param name="ConnectionsThawed">Connections that were frozen and now flow.</param>
/// <param name="EndpointsThawed">Endpoints that were frozen and now flow.</param>
/// <param name="NotFrozenConnections">Connections asked for that were not frozen (not an error).</param>
/// <param name="NotFrozenEndpoints">Endpoints asked for that were not frozen (not an error).</param>
/// <remarks>Thread safety: immutable; safe to share between threads.</remarks>
public sealed record ThawResult(int ConnectionsThawed, int EndpointsThawed,
    IReadOnlyList<ConnectionKey> NotFrozenConnections, IReadOnlyList<EndpointKey> NotFrozenEndpoints)
{
    private bool PrintMembers(StringBuilder builder)
    {
        builder.Member(nameof(ConnectionsThawed), ConnectionsThawed, first: true).Member(nameof(EndpointsThawed), EndpointsThawed)
            .Items(nameof(NotFrozenConnections), NotFrozenConnections).Items(nameof(NotFrozenEndpoints), NotFrozenEndpoints).Member(nameof(Kick), Kick);
        return true;
    }


    /// <summary>What the resume kick did (<see cref="KickResult.None"/> when it was off or had nothing to do).</summary>
    public KickResult Kick { get; init; } = KickResult.None;
}
