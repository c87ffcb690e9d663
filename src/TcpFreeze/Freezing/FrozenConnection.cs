namespace TcpFreeze;

/// <summary>A frozen connection, as listed.</summary>
/// <param name="Key">The connection.</param>
/// <param name="DroppedPackets">Packets dropped for it so far, both directions.</param>
/// <param name="LeaseRemaining">Time left on its lease; null when it has none; zero once expired.</param>
public sealed record FrozenConnection(ConnectionKey Key, ulong DroppedPackets, TimeSpan? LeaseRemaining)
{
    /// <summary>Whether the lease ended (the kernel no longer drops its packets).</summary>
    public bool IsExpired => LeaseRemaining == TimeSpan.Zero;
}
