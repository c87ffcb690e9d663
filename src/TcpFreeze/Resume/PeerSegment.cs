namespace TcpFreeze;

/// <summary>
/// A peer's data segment kept while its connection was frozen, for the replay a thaw does
/// (see RESUME.md): the first bytes of its IP packet, headers included, as it arrived.
/// </summary>
/// <param name="Packet">The IP packet from its first byte; at most 2,048 bytes of it.</param>
/// <param name="IpLength">The whole packet's length, from its IP header: larger than <paramref name="Packet"/>'s when only a prefix was kept.</param>
public sealed record PeerSegment(byte[] Packet, uint IpLength)
{
    /// <summary>The most bytes of a packet a segment keeps (TF_REPLAY_BYTES).</summary>
    public const int MaxBytes = ReplayRecord.Capacity;
}
