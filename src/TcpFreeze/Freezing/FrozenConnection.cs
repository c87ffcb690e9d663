namespace TcpFreeze;

/// <summary>A frozen connection, as listed.</summary>
/// <param name="Key">The connection.</param>
/// <param name="DroppedPackets">Packets dropped for it so far, both directions.</param>
/// <param name="LeaseRemaining">Time left on its lease; null when it has none; zero once expired.</param>
/// <remarks>Thread safety: immutable; safe to share between threads.</remarks>
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

    /// <summary>
    /// The sequence number of the last data segment from the peer that was dropped (host byte
    /// order), or null when none was. While frozen nothing is acknowledged, so this is the peer's
    /// oldest unacknowledged byte: what a resume kick quotes. A restore on another host can be
    /// given it (<see cref="TcpFreezer.Thaw"/>'s <c>peerSequences</c>) when its own programs saw
    /// no retransmission yet.
    /// </summary>
    public uint? PeerSequence { get; init; }

    /// <summary>CLOCK_MONOTONIC of the first drop in nanoseconds, 0 for none: what <see cref="TcpFreezer.ReadSegments(IEnumerable{FrozenConnection})"/> needs of the listing.</summary>
    internal ulong FirstDropNs { get; init; }
}
