namespace TcpFreeze.Migration;

/// <summary>
/// How the connections are kept silent while CRIU dumps and restores the server: CRIU's
/// own network lock (<paramref name="CriuNetworkLock"/>), or none from CRIU and the
/// TcpFreeze hook instead.
/// </summary>
/// <param name="Name">The name used on the command line and in the results.</param>
/// <param name="CriuNetworkLock">CRIU's --network-lock.</param>
/// <param name="Hook">Whether the TcpFreeze hook runs as CRIU's action script.</param>
/// <param name="PreAttached">Whether the namespace is attached before the dump and stays attached (keep-attached = true).</param>
/// <param name="Description">One line for the report.</param>
/// <param name="Kick">The hook's resume kick at pre-resume (kick = true, its default); false: kick = false.</param>
/// <param name="LegacyIptables">CRIU's `sh -c "iptables ..."` finds iptables-legacy under the name `iptables` (first on its PATH).</param>
/// <param name="Agent">The hook's steps go to the resident agent (`tcpfreeze-criu-hook --agent`, one for the whole benchmark); otherwise the hook runs each step itself.</param>
internal sealed record LockMethod(string Name, string CriuNetworkLock, bool Hook, bool PreAttached, string Description, bool Kick = true,
    bool LegacyIptables = false, bool Agent = false)
{
    public static readonly LockMethod TcpFreeze = new("tcpfreeze", "skip", Hook: true, PreAttached: false,
        "--network-lock skip + the TcpFreeze hook, default settings: attaches at pre-dump and pre-restore, detaches after the thaw");

    public static readonly LockMethod TcpFreezeWarm = new("tcpfreeze-warm", "skip", Hook: true, PreAttached: true,
        "the same, with the namespace attached before the dump and keep-attached = true: the hook only opens the pins");

    public static readonly LockMethod TcpFreezeAgent = new("tcpfreeze-agent", "skip", Hook: true, PreAttached: true,
        "as tcpfreeze-warm, with the agent running (the installer's fast path): the hook's front end hands each step to it over a Unix socket",
        Agent: true);

    public static readonly LockMethod TcpFreezeNoKick = new("tcpfreeze-nokick", "skip", Hook: true, PreAttached: false,
        "the hook as `tcpfreeze` with `kick = false`: no resume kick at pre-resume, the peers resume at their next retransmission",
        Kick: false);

    public static readonly LockMethod Skip = new("skip", "skip", Hook: false, PreAttached: false,
        "--network-lock skip and nothing else: no lock at all, the unsafe floor");

    public static readonly LockMethod SkipAttached = new("skip-attached", "skip", Hook: false, PreAttached: true,
        "--network-lock skip with TcpFreeze's programs attached before the dump but nothing frozen and no hook: what the programs alone cost CRIU's dump");

    public static readonly LockMethod Iptables = new("iptables", "iptables", Hook: false, PreAttached: false,
        "CRIU's default: two `sh -c iptables ...` DROP rules per connection (Debian's default nft-backed iptables)");

    public static readonly LockMethod IptablesLegacy = new("iptables-legacy", "iptables", Hook: false, PreAttached: false,
        "CRIU's default lock with iptables-legacy (x_tables, as the paper's Ubuntu 20.04 had) found first on CRIU's PATH as `iptables`",
        LegacyIptables: true);

    public static readonly LockMethod Nftables = new("nftables", "nftables", Hook: false, PreAttached: false,
        "--network-lock nftables: one libnftables call per connection into an `inet CRIU-PID` table");

    /// <summary>Every method, in the order the results list them.</summary>
    public static IReadOnlyList<LockMethod> All { get; } = [TcpFreeze, TcpFreezeNoKick, TcpFreezeWarm, TcpFreezeAgent, Skip, SkipAttached, Iptables, IptablesLegacy, Nftables];

    /// <summary>The methods of the paper's experiment (--paper without --methods).</summary>
    public static IReadOnlyList<LockMethod> Paper { get; } = [Iptables, IptablesLegacy, TcpFreeze, TcpFreezeWarm];

    /// <summary>The methods of a run without --methods (the downtime table of docs/performance.md).</summary>
    public static IReadOnlyList<LockMethod> Default { get; } = [TcpFreeze, TcpFreezeWarm, Skip, Iptables, Nftables];

    /// <summary>Other names accepted on the command line: the issue's and the hook's own wording.</summary>
    private static readonly Dictionary<string, LockMethod> Aliases = new()
    {
        ["hook"] = TcpFreeze,
        ["agent"] = TcpFreezeAgent,
        ["hook-nokick"] = TcpFreezeNoKick,
        ["tcpfreeze-kick"] = TcpFreeze,
    };

    public static LockMethod Parse(string name)
        => All.FirstOrDefault(m => m.Name == name.Trim())
           ?? Aliases.GetValueOrDefault(name.Trim())
           ?? throw new ArgumentException($"unknown method '{name}' (known: {string.Join(", ", All.Select(m => m.Name))}; " +
                                          $"also {string.Join(", ", Aliases.Keys)})");

    public override string ToString() => Name;
}
