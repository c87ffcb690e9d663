namespace TcpFreeze;

/// <summary>What <see cref="TcpFreezer.Freeze"/> did.</summary>
/// <param name="ConnectionsFrozen">Connections newly frozen.</param>
/// <param name="EndpointsFrozen">Endpoints newly frozen.</param>
/// <param name="AlreadyFrozen">Keys that were frozen before (an entry whose lease had ended does not count); their lease was replaced by this call's.</param>
public sealed record FreezeResult(int ConnectionsFrozen, int EndpointsFrozen, int AlreadyFrozen);

/// <summary>What <see cref="TcpFreezer.Thaw"/> did.</summary>
/// <param name="ConnectionsThawed">Connections that were frozen and now flow.</param>
/// <param name="EndpointsThawed">Endpoints that were frozen and now flow.</param>
/// <param name="NotFrozenConnections">Connections asked for that were not frozen (not an error).</param>
/// <param name="NotFrozenEndpoints">Endpoints asked for that were not frozen (not an error).</param>
public sealed record ThawResult(int ConnectionsThawed, int EndpointsThawed,
    IReadOnlyList<ConnectionKey> NotFrozenConnections, IReadOnlyList<EndpointKey> NotFrozenEndpoints);

/// <summary>A frozen connection, as listed.</summary>
/// <param name="Key">The connection.</param>
/// <param name="DroppedPackets">Packets dropped for it so far, both directions.</param>
/// <param name="LeaseRemaining">Time left on its lease; null when it has none; zero once expired.</param>
public sealed record FrozenConnection(ConnectionKey Key, ulong DroppedPackets, TimeSpan? LeaseRemaining)
{
    /// <summary>Whether the lease ended (the kernel no longer drops its packets).</summary>
    public bool IsExpired => LeaseRemaining == TimeSpan.Zero;
}

/// <summary>A frozen local endpoint, as listed.</summary>
/// <param name="Key">The endpoint.</param>
/// <param name="DroppedPackets">Packets dropped for it so far.</param>
/// <param name="LeaseRemaining">Time left on its lease; null when it has none; zero once expired.</param>
public sealed record FrozenEndpoint(EndpointKey Key, ulong DroppedPackets, TimeSpan? LeaseRemaining)
{
    /// <summary>Whether the lease ended.</summary>
    public bool IsExpired => LeaseRemaining == TimeSpan.Zero;
}

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

/// <summary>An interface TcpFreeze's programs run on.</summary>
/// <param name="Name">Interface name.</param>
/// <param name="Index">Interface index.</param>
/// <param name="XdpMode">Native or generic (meaningless when <see cref="IngressHook"/> is <see cref="TcpFreeze.IngressHook.Tc"/>).</param>
/// <param name="Created">False when it was attached already, in the same hook.</param>
public sealed record AttachedInterface(string Name, int Index, XdpAttachMode XdpMode, bool Created)
{
    /// <summary>Where the ingress program runs on this interface.</summary>
    public IngressHook IngressHook { get; init; } = IngressHook.Xdp;
}

/// <summary>What <see cref="TcpFreezer.Detach(FreezerOptions?)"/> removed.</summary>
/// <param name="Interfaces">Interfaces whose TcpFreeze programs were detached.</param>
/// <param name="PinsRemoved">Pins removed.</param>
public sealed record DetachResult(IReadOnlyList<string> Interfaces, int PinsRemoved);
