using System.Net;

namespace TcpFreeze;

/// <summary>A live socket that a freeze would cut off (see <see cref="ProcessSockets.FindLiveSockets"/>).</summary>
/// <param name="Listed">The connection or endpoint, as text, that covers the socket.</param>
/// <param name="Local">The socket's local endpoint.</param>
/// <param name="Remote">The socket's peer; null for a listener.</param>
/// <param name="State">The socket's TCP state, e.g. Established or Listen.</param>
/// <remarks>Thread safety: immutable; safe to share between threads.</remarks>
public sealed record LiveSocket(string Listed, IPEndPoint Local, IPEndPoint? Remote, string State)
{
    /// <summary>The socket's inode (what /proc/PID/fd/N links to as "socket:[INODE]"), to find the process that holds it.</summary>
    public ulong Inode { get; init; }

    /// <summary>"LOCAL -> REMOTE (State)" or "LOCAL (Listen)".</summary>
    public override string ToString()
        => Remote is null ? $"{TcpEndpointText.Format(Local)} ({State})" : $"{TcpEndpointText.Format(Local)} -> {TcpEndpointText.Format(Remote)} ({State})";
}
