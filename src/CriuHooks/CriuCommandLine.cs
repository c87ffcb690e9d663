namespace TcpFreeze.CriuHooks;

/// <summary>
/// What the CRIU process that runs the hook was asked to do, read from its command line the way
/// CRIU 4.2.1 reads it (criu/crtools.c, criu/config.c): getopt_long moves the options, with their
/// values, out of the way, and the first argument left is the command (dump, pre-dump, restore,
/// lazy-pages, page-server, swrk, ...).
/// <para>
/// Why the hook asks: CRTOOLS_SCRIPT_ACTION "pre-dump" names the step before a real dump's tasks are
/// frozen, not a <c>criu pre-dump</c> round, and no environment variable tells the two apart. CRIU
/// 4.2.1's <c>criu pre-dump</c> (cr_pre_dump_tasks) runs no action script at all, but a round that
/// did reach the hook must freeze nothing: its tasks keep running and none of its sockets is dumped,
/// so a freeze would only stall every client for the round (and the dump watcher would thaw it when
/// CRIU ends). Under RPC (<c>criu swrk</c>, as runc and podman run it) the command line does not say;
/// CRIU's pre-dump request goes through the same cr_pre_dump_tasks there, which runs no script.
/// </para>
/// </summary>
internal sealed record CriuCommandLine(string? Command, bool LazyPages)
{
    /// <summary>CRIU's short options that take a value (config.c's "dSsRt:hD:o:v::x::Vr:jJ:lW:L:M:"; v and x take one only when attached).</summary>
    private const string ShortOptionsWithValue = "tDorJWLM";

    /// <summary>CRIU's long options that take a separate value (required_argument in config.c's long_opts).</summary>
    private static readonly string[] LongOptionsWithValue =
    [
        "tree", "images-dir", "work-dir", "log-file", "join-ns", "root", "close", "pidfile", "veth-pair", "action-script",
        "address", "port", "prev-images-dir", "libdir", "ext-mount-map", "cgroup-root", "inherit-fd", "feature", "skip-mnt",
        "enable-fs", "freeze-cgroup", "ghost-limit", "irmap-scan-path", "lsm-profile", "timeout", "external", "empty-ns",
        "cgroup-props", "cgroup-props-file", "cgroup-dump-controller", "status-fd", "ps-socket", "config", "tls-cacert",
        "tls-cacrl", "tls-cert", "tls-key", "cgroup-yard", "pre-dump-mode", "file-validation", "lsm-mount-context", "network-lock",
    ];

    /// <summary>Whether this is a <c>criu pre-dump</c> round (memory only; the tasks keep running and no socket is dumped).</summary>
    public bool IsPreDumpRound => Command == "pre-dump";

    /// <summary>
    /// Parses <paramref name="argv"/> (argv[0] is the program). The command is null when there is
    /// none; an option CRIU would refuse (unknown, or a value missing) is skipped as CRIU would fail anyway.
    /// </summary>
    public static CriuCommandLine Parse(IReadOnlyList<string> argv)
    {
        ArgumentNullException.ThrowIfNull(argv);
        string? command = null;
        bool lazy = false;
        for (int i = 1; i < argv.Count; i++)
        {
            string arg = argv[i];
            if (arg == "--")
            {
                command ??= i + 1 < argv.Count ? argv[i + 1] : null;
                break;
            }
            if (arg.StartsWith("--", StringComparison.Ordinal))
            {
                string name = arg[2..];
                if (name.Contains('=', StringComparison.Ordinal))
                    continue; // --name=value: one argument
                lazy |= name.Length >= 2 && "lazy-pages".StartsWith(name, StringComparison.Ordinal);
                if (TakesValue(name))
                    i++;
                continue;
            }
            if (arg.Length > 1 && arg[0] == '-')
            {
                // A bundle such as -vvv or -Dimages: the first option that takes a value takes the rest,
                // or the next argument when nothing is left of this one.
                for (int c = 1; c < arg.Length; c++)
                    if (ShortOptionsWithValue.Contains(arg[c], StringComparison.Ordinal))
                    {
                        if (c == arg.Length - 1)
                            i++;
                        break;
                    }
                continue;
            }
            command ??= arg;
        }
        return new CriuCommandLine(command, lazy);
    }

    /// <summary>The command line of process <paramref name="pid"/>; null when it cannot be read (gone, or not ours to read).</summary>
    public static CriuCommandLine? Read(int pid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid}/cmdline");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        if (text.Length == 0)
            return null; // a zombie, or a kernel thread
        return Parse(text.TrimEnd('\0').Split('\0'));
    }

    /// <summary>
    /// CRIU's long options that take no value, or only an attached one (--name=value): no_argument and
    /// optional_argument in config.c, each BOOL_OPT also as no-NAME.
    /// </summary>
    private static readonly HashSet<string> LongOptionsWithoutValue = BuildWithoutValue();

    private static HashSet<string> BuildWithoutValue()
    {
        string[] booleans =
        [
            "restore-detached", "restore-sibling", "daemon", "tcp-established", "log-pid", "evasive-devices", "link-remap",
            "shell-job", "file-locks", "page-server", "track-mem", "auto-dedup", "force-irmap", "extra", "experimental",
            "skip-in-flight", "deprecated", "display-stats", "weak-sysctls", "tcp-close", "stream", "tls", "skip-file-rwx-check",
            "mntns-compat-mode", "unprivileged", "ghost-fiemap", "allow-uprobes",
        ];
        string[] others =
        [
            "leave-stopped", "leave-running", "help", "version", "ms", "exec-cmd", "enable-external-sharing", "enable-external-masters",
            "lazy-pages", "all", "no-default-config", "tls-no-cn-verify", "ext-unix-sk", "cpu-cap", "manage-cgroups", "verbosity",
        ];
        return [.. booleans, .. booleans.Select(b => "no-" + b), .. others];
    }

    /// <summary>
    /// Whether a long option takes its value from the next argument. getopt_long takes an exact name
    /// first, else an abbreviation that starts exactly one option (--images for --images-dir); an
    /// ambiguous one is an error CRIU stops at, so it does not matter here.
    /// </summary>
    private static bool TakesValue(string name)
    {
        if (name.Length == 0 || LongOptionsWithoutValue.Contains(name))
            return false;
        if (Array.IndexOf(LongOptionsWithValue, name) >= 0)
            return true;
        return LongOptionsWithValue.Any(o => o.StartsWith(name, StringComparison.Ordinal))
               && !LongOptionsWithoutValue.Any(o => o.StartsWith(name, StringComparison.Ordinal));
    }
}
