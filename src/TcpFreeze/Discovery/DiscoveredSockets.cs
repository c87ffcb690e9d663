using System.Text;

namespace TcpFreeze;

/// <summary>What <see cref="ProcessSockets.Discover(int)"/> found for a process tree.</summary>
/// <param name="RootPid">The process asked about.</param>
/// <param name="Pids">The processes whose descriptors were read: the root first, then its descendants.</param>
/// <param name="Connections">The TCP connections they hold, from their host's point of view (local = their socket), without duplicates.</param>
/// <param name="Listeners">The local endpoints they listen on, without duplicates.</param>
/// <remarks>Thread safety: immutable; safe to share between threads.</remarks>
public sealed record DiscoveredSockets(int RootPid, IReadOnlyList<int> Pids, IReadOnlyList<ConnectionKey> Connections, IReadOnlyList<EndpointKey> Listeners)
{
    private bool PrintMembers(StringBuilder builder)
    {
        builder.Member(nameof(RootPid), RootPid, first: true).Items(nameof(Pids), Pids).Items(nameof(Connections), Connections).Items(nameof(Listeners), Listeners);
        return true;
    }
}

