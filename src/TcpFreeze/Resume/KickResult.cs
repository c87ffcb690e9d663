namespace TcpFreeze;

/// <summary>What the resume kick of one thaw did (see <see cref="TcpFreezer.Thaw"/>).</summary>
/// <param name="ConnectionsKicked">Released connections that had dropped data segments and got messages.</param>
/// <param name="PacketsSent">ICMP messages sent.</param>
/// <param name="PacketsFailed">Messages the host could not send (no route to that address any more).</param>
/// <remarks>Thread safety: immutable; safe to share between threads.</remarks>
public sealed record KickResult(int ConnectionsKicked, int PacketsSent, int PacketsFailed)
{
    /// <summary>
    /// Why no message could be sent at all (e.g. no CAP_NET_RAW for the raw socket); null when
    /// the kick ran. The thaw itself has happened either way: the connections then resume at
    /// their next retransmission, as without the kick.
    /// </summary>
    public string? Error { get; init; }

    /// <summary>
    /// Segments of the peers handed back to the local sockets (the replay, see RESUME.md): one
    /// per released connection whose peer sent data while frozen.
    /// </summary>
    public int SegmentsReplayed { get; init; }

    /// <summary>
    /// Segments of the local sockets sent to their peers (the replay's mirror, see RESUME.md): one per
    /// released connection whose local socket sent data while frozen, such as a reply the freeze caught
    /// on its way out, which a socket CRIU restored would otherwise resend only on its fresh timer.
    /// </summary>
    public int LocalSegmentsReplayed { get; init; }

    /// <summary>Replay segments, of either direction, that could not be handed over (no raw socket, or the address is gone).</summary>
    public int ReplayFailed { get; init; }

    /// <summary>No kick: nothing had been dropped, or the kick was off.</summary>
    public static KickResult None { get; } = new(0, 0, 0);
}
