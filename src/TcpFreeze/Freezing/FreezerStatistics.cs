namespace TcpFreeze;

/// <summary>Counters summed over all CPUs since the programs were loaded.</summary>
/// <param name="TcpPacketsSeen">TCP packets the programs parsed.</param>
/// <param name="DroppedIngress">Packets dropped by the ingress program (XDP or TC).</param>
/// <param name="DroppedEgress">Packets dropped by the TC egress program.</param>
/// <param name="Passed">Packets let through (TCP or not).</param>
/// <param name="FrozenConnections">Entries in the connections map (expired ones included).</param>
/// <param name="FrozenEndpoints">Entries in the endpoints map.</param>
/// <param name="ConnectionCapacity">The connections map's capacity.</param>
public sealed record FreezerStatistics(ulong TcpPacketsSeen, ulong DroppedIngress, ulong DroppedEgress, ulong Passed,
    int FrozenConnections, int FrozenEndpoints, uint ConnectionCapacity);
