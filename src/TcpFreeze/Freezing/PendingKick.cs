namespace TcpFreeze;

/// <summary>
/// A resume kick a thaw prepared and did not send (<see cref="TcpFreezer.ThawAndHoldKick"/>): the ICMP messages
/// and the replay of the segments the programs kept for the connections it released. Send it once, soon: the peers'
/// back-off keeps growing meanwhile. Not thread-safe: one caller sends it.
/// </summary>
public sealed class PendingKick
{
    private Func<IReadOnlyDictionary<ConnectionKey, uint>?, IReadOnlyDictionary<ConnectionKey, PeerSegment>?, IReadOnlyDictionary<ConnectionKey, PeerSegment>?, KickResult>? _send;

    internal PendingKick(Func<IReadOnlyDictionary<ConnectionKey, uint>?, IReadOnlyDictionary<ConnectionKey, PeerSegment>?, IReadOnlyDictionary<ConnectionKey, PeerSegment>?, KickResult> send)
        => _send = send;

    /// <summary>Whether <see cref="Send()"/> was called already.</summary>
    public bool Sent => _send is null;

    /// <summary>Sends the kick (once; later calls send nothing and return <see cref="KickResult.None"/>). A kick that cannot be sent is reported in the result, not thrown.</summary>
    public KickResult Send() => Send(null, null, null);

    /// <summary>
    /// Sends the kick with what a restore on another host brought, found after the thaw (as
    /// <see cref="TcpFreezer.Thaw"/>'s arguments of the same names; each one given here replaces the one given to
    /// <see cref="TcpFreezer.ThawAndHoldKick"/>). Once, as <see cref="Send()"/>.
    /// </summary>
    public KickResult Send(IReadOnlyDictionary<ConnectionKey, uint>? peerSequences, IReadOnlyDictionary<ConnectionKey, PeerSegment>? peerSegments,
        IReadOnlyDictionary<ConnectionKey, PeerSegment>? localSegments)
    {
        var send = _send;
        _send = null;
        return send?.Invoke(peerSequences, peerSegments, localSegments) ?? KickResult.None;
    }
}
