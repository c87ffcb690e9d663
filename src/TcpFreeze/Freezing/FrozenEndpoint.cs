namespace TcpFreeze;

/// <summary>A frozen local endpoint, as listed.</summary>
/// <param name="Key">The endpoint.</param>
/// <param name="DroppedPackets">Packets dropped for it so far.</param>
/// <param name="LeaseRemaining">Time left on its lease; null when it has none; zero once expired.</param>
/// <remarks>Thread safety: immutable; safe to share between threads.</remarks>
public sealed record FrozenEndpoint(EndpointKey Key, ulong DroppedPackets, TimeSpan? LeaseRemaining)
{
    /// <summary>Whether the lease ended.</summary>
    public bool IsExpired => LeaseRemaining == TimeSpan.Zero;
}
