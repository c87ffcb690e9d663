namespace TcpFreeze;

/// <summary>
/// A resume kick a thaw prepared and did not send (<see cref="TcpFreezer.ThawAndHoldKick"/>): the ICMP messages
/// and the replay of the peers' dropped segments for the connections it released. Send it once, soon: the peers'
/// back-off keeps growing meanwhile. Not thread-safe: one caller sends it.
/// </summary>
public sealed class PendingKick
{
    private Func<KickResult>? _send;

    internal PendingKick(Func<KickResult> send) => _send = send;

    /// <summary>Whether <see cref="Send"/> was called already.</summary>
    public bool Sent => _send is null;

    /// <summary>Sends the kick (once; later calls send nothing and return <see cref="KickResult.None"/>). A kick that cannot be sent is reported in the result, not thrown.</summary>
    public KickResult Send()
    {
        Func<KickResult>? send = _send;
        _send = null;
        return send?.Invoke() ?? KickResult.None;
    }
}
