using Ebpf.Interop;
using Microsoft.Extensions.Logging;

namespace TcpFreeze;

/// <summary>Where and how a <see cref="TcpFreezer"/> works.</summary>
public sealed record FreezerOptions
{
    /// <summary>The default pin root.</summary>
    public const string DefaultPinRoot = "/sys/fs/bpf/tcpfreeze";

    /// <summary>
    /// Where the pinned maps and programs live. Each network namespace gets its own
    /// directory below it (netns-COOKIE), so namespaces never share frozen sets.
    /// Independent users (and tests) pick different roots so they never collide.
    /// </summary>
    public string PinRoot { get; init; } = DefaultPinRoot;

    /// <summary>The network namespace whose interfaces are attached (default: the current one).</summary>
    public NetworkNamespace Namespace { get; init; } = NetworkNamespace.Current;

    /// <summary>Interfaces to attach to; null or empty: every interface that is up, loopback included.</summary>
    public IReadOnlyList<string>? Interfaces { get; init; }

    /// <summary>XDP mode (native where the driver has it, else generic, by default).</summary>
    public XdpMode XdpMode { get; init; } = XdpMode.Auto;

    /// <summary>
    /// Replace another XDP program (or TC filter at TcpFreeze's handle) found on an
    /// interface. Off by default: attaching over a foreign program fails instead.
    /// </summary>
    public bool ReplaceForeignPrograms { get; init; }

    /// <summary>Capacity of the connections map when it is first created.</summary>
    public uint MaxConnections { get; init; } = 262_144;

    /// <summary>Capacity of the endpoints map when it is first created.</summary>
    public uint MaxEndpoints { get; init; } = 4_096;

    /// <summary>Receives libbpf's log and TcpFreeze's own diagnostics.</summary>
    public ILogger? Logger { get; init; }
}
