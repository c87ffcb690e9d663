namespace TcpFreeze;

/// <summary>Counters summed over all CPUs since the programs were loaded.</summary>
/// <param name="TcpPacketsSeen">TCP packets the programs parsed.</param>
/// <param name="DroppedIngress">Packets dropped by the ingress program (XDP or TC).</param>
/// <param name="DroppedEgress">Packets dropped by the TC egress program.</param>
/// <param name="Passed">Packets let through (TCP or not).</param>
/// <param name="FrozenConnections">Connections frozen now (entries whose lease ended are counted in <see cref="ExpiredConnections"/> instead).</param>
/// <param name="FrozenEndpoints">Endpoints frozen now (expired ones not included).</param>
/// <param name="ConnectionCapacity">The connections map's capacity.</param>
/// <remarks>Thread safety: immutable; safe to share between threads.</remarks>
public sealed record FreezerStatistics(ulong TcpPacketsSeen, ulong DroppedIngress, ulong DroppedEgress, ulong Passed,
    int FrozenConnections, int FrozenEndpoints, uint ConnectionCapacity)
{
    /// <summary>Connection entries whose lease ended: they drop nothing and the next freeze (or <see cref="TcpFreezer.RemoveExpired"/>) deletes them.</summary>
    public int ExpiredConnections { get; init; }

    /// <summary>Endpoint entries whose lease ended (see <see cref="ExpiredConnections"/>).</summary>
    public int ExpiredEndpoints { get; init; }
}
