namespace TcpFreeze;

/// <summary>A frozen connection, as listed.</summary>
/// <param name="Key">The connection.</param>
/// <param name="DroppedPackets">Packets dropped for it so far, both directions.</param>
/// <param name="LeaseRemaining">Time left on its lease; null when it has none; zero once expired.</param>
public sealed record FrozenConnection(ConnectionKey Key, ulong DroppedPackets, TimeSpan? LeaseRemaining)
{
    /// <summary>Whether the lease ended (the kernel no longer drops its packets).</summary>
    public bool IsExpired => LeaseRemaining == TimeSpan.Zero;

    /// <summary>
    /// Data segments (or SYN/FIN) the peer sent that were dropped: each is a try the peer's TCP
    /// made and backed off after. Non-zero means a thaw's resume kick has something to wake on
    /// the peer's side.
    /// </summary>
    public uint PeerDataSegmentsDropped { get; init; }

    /// <summary>Data segments (or SYN/FIN) this host's socket sent that were dropped (the local side of the kick).</summary>
    public uint LocalDataSegmentsDropped { get; init; }
}
