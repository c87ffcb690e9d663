using Microsoft.Extensions.Logging;

namespace TcpFreeze;

/// <summary>Where and how a <see cref="TcpFreezer"/> works.</summary>
/// <remarks>Thread safety: immutable (init-only); share one instance between threads and freezers freely.</remarks>
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

    /// <summary>
    /// Where the ingress program runs: <see cref="IngressHook.Xdp"/> (the default, the
    /// earliest and cheapest drop) or <see cref="IngressHook.Tc"/>, a TC clsact ingress
    /// filter. Tc is the way to coexist with another tool's XDP program: that program
    /// stays attached and untouched, and TcpFreeze judges what it passes. Attaching an
    /// interface in one hook moves TcpFreeze's ingress program there from the other
    /// and keeps the frozen set (InterfaceAttacher explains how ingress stays guarded meanwhile).
    /// </summary>
    public IngressHook IngressHook { get; init; } = IngressHook.Xdp;

    /// <summary>XDP mode (native where the driver has it, else generic, by default); unused with <see cref="IngressHook.Tc"/>.</summary>
    public XdpAttachMode XdpMode { get; init; } = XdpAttachMode.Auto;

    /// <summary>
    /// Replace another XDP program (or TC filter at TcpFreeze's handle) found on an
    /// interface. Off by default: attaching over a foreign program fails instead.
    /// With <see cref="IngressHook.Tc"/> no XDP program is touched, so this only
    /// concerns TC filters at TcpFreeze's handle. To keep another XDP program, use
    /// <see cref="IngressHook"/> = <see cref="IngressHook.Tc"/> instead.
    /// </summary>
    public bool ReplaceForeignPrograms { get; init; }

    /// <summary>Capacity of the connections map when it is first created.</summary>
    public uint MaxConnections { get; init; } = 262_144;

    /// <summary>Capacity of the endpoints map when it is first created.</summary>
    public uint MaxEndpoints { get; init; } = 4_096;

    /// <summary>
    /// The lease of a <see cref="TcpFreezer.Freeze"/> that names none (default <see cref="TcpFreeze.Lease.Default"/>,
    /// 120 s). <see cref="TcpFreeze.Lease.Forever"/> makes such freezes last until thawed; ask for that only when
    /// something else is sure to thaw.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is neither positive nor <see cref="TcpFreeze.Lease.Forever"/>.</exception>
    public TimeSpan DefaultLease
    {
        get => _defaultLease;
        init => _defaultLease = TcpFreeze.Lease.IsValid(value)
            ? value
            : throw new ArgumentOutOfRangeException(nameof(DefaultLease), value, "a lease must be positive, or Lease.Forever");
    }

    private readonly TimeSpan _defaultLease = TcpFreeze.Lease.Default;

    /// <summary>The default <see cref="LockTimeout"/>.</summary>
    public static readonly TimeSpan DefaultLockTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a mutating call waits for the pin root's lock, which another process holds
    /// while it attaches, freezes, thaws or detaches (normally milliseconds). Past it the call
    /// fails naming the holder's PID, so that a hung holder never blocks a caller (a CRIU
    /// step) for ever. <see cref="Timeout.InfiniteTimeSpan"/> is not accepted.
    /// </summary>
    public TimeSpan LockTimeout
    {
        get => _lockTimeout;
        init => _lockTimeout = value >= TimeSpan.Zero
            ? value
            : throw new ArgumentOutOfRangeException(nameof(LockTimeout), value, "the lock timeout must be zero or more");
    }

    private readonly TimeSpan _lockTimeout = DefaultLockTimeout;

    /// <summary>
    /// Creates the loggers TcpFreeze writes to, one per category: <see cref="LogCategory"/> for its own
    /// diagnostics and <see cref="TcpFreeze.Ebpf.Interop.LibbpfLog.Category"/> for libbpf's messages. libbpf's
    /// messages from this freezer's calls reach this freezer's logger, whatever other freezers the
    /// process has (<see cref="TcpFreeze.Ebpf.Interop.LibbpfLog"/> says how).
    /// Null (the default) logs nothing.
    /// </summary>
    public ILoggerFactory? LoggerFactory { get; init; }

    /// <summary>The category of TcpFreeze's own log messages.</summary>
    public const string LogCategory = "TcpFreeze";

    /// <summary>The logger of <paramref name="category"/>, or null when none is configured.</summary>
    internal ILogger? CreateLogger(string category) => LoggerFactory?.CreateLogger(category) is { } logger ? new DeferringLogger(logger) : null;
}
