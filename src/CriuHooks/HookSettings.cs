using System.Globalization;

namespace TcpFreeze.CriuHooks;

/// <summary>
/// What the hook needs to know beyond CRIU's environment. Read from a small
/// configuration file (default <see cref="DefaultConfigPath"/>; engines such as podman
/// strip the environment, so the file is the dependable channel), then overridden by
/// environment variables when they are set.
/// <code>
/// # /etc/tcpfreeze/criu-hook.conf
/// lease-seconds = 120          # how long a freeze holds at most (dump to restore must fit)
/// interfaces = eth0, lo        # default: every interface that is up
/// pin-root = /sys/fs/bpf/tcpfreeze
/// log-file = /var/log/tcpfreeze-hook.log
/// keep-attached = false        # true: leave the programs attached after the last thaw
/// ingress = xdp                # tc: a TC ingress filter, to coexist with another XDP program
/// </code>
/// Environment overrides: TCPFREEZE_HOOK_CONFIG (the file's path), TCPFREEZE_LEASE_SECONDS,
/// TCPFREEZE_INTERFACES, TCPFREEZE_PIN_ROOT, TCPFREEZE_LOG_FILE (paths must be absolute there too),
/// TCPFREEZE_INGRESS, TCPFREEZE_KICK, TCPFREEZE_KEEP_ATTACHED.
/// </summary>
public sealed record HookSettings
{
    /// <summary>Where the hook looks for its configuration file.</summary>
    public const string DefaultConfigPath = "/etc/tcpfreeze/criu-hook.conf";

    /// <summary>How long a freeze holds at most (default: the library's <see cref="TcpFreeze.Lease.Default"/>, as every front end).</summary>
    public TimeSpan Lease { get; init; } = TcpFreeze.Lease.Default;

    /// <summary>Interfaces to attach to; null: every interface that is up.</summary>
    public IReadOnlyList<string>? Interfaces { get; init; }

    /// <summary>The pin root (see <see cref="FreezerOptions.PinRoot"/>).</summary>
    public string PinRoot { get; init; } = FreezerOptions.DefaultPinRoot;

    /// <summary>A file that also receives the hook's messages (they always go to stderr, i.e. CRIU's log).</summary>
    public string? LogFile { get; init; }

    /// <summary>
    /// Keep the programs attached and pinned after a restore thawed the last frozen
    /// connection (faster next time). Off by default: the hook leaves nothing behind.
    /// </summary>
    public bool KeepAttached { get; init; }

    /// <summary>
    /// Where the ingress program runs (see <see cref="FreezerOptions.IngressHook"/>):
    /// xdp by default; tc coexists with another tool's XDP program on the interfaces.
    /// </summary>
    public IngressHook Ingress { get; init; } = IngressHook.Xdp;

    /// <summary>
    /// Send the resume kick when pre-resume thaws (on by default): ICMP unreachable messages that
    /// make both ends of each restored connection retransmit at once, instead of after the back-off
    /// they built up during the migration. Off: they resume at their next retransmission.
    /// </summary>
    public bool Kick { get; init; } = true;

    /// <summary>The file the settings came from, if any.</summary>
    public string? Source { get; init; }

    /// <summary>Freezer options for the current network namespace.</summary>
    public FreezerOptions ToFreezerOptions() => new() { PinRoot = PinRoot, Interfaces = Interfaces, IngressHook = Ingress };

    /// <summary>Reads the settings of this process (file, then environment).</summary>
    public static HookSettings Load() => Load(name => Environment.GetEnvironmentVariable(name));

    /// <summary>Reads the settings from a configuration file and environment lookup.</summary>
    /// <exception cref="FormatException">A setting is malformed; the message names the file or variable and the line.</exception>
    /// <exception cref="IOException">The configuration file exists but cannot be read; the message names it.</exception>
    public static HookSettings Load(Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        string? explicitPath = environment("TCPFREEZE_HOOK_CONFIG");
        string path = string.IsNullOrEmpty(explicitPath) ? DefaultConfigPath : explicitPath;
        var settings = new HookSettings();
        if (ReadTrusted(path) is { } lines)
            settings = Parse(lines, path);
        else if (!string.IsNullOrEmpty(explicitPath))
            throw new FormatException($"TCPFREEZE_HOOK_CONFIG names {path}, which does not exist.");

        if (environment("TCPFREEZE_LEASE_SECONDS") is { Length: > 0 } lease)
            settings = settings with { Lease = ParseLease(lease, "TCPFREEZE_LEASE_SECONDS") };
        if (environment("TCPFREEZE_INTERFACES") is { Length: > 0 } interfaces)
            settings = settings with { Interfaces = ParseInterfaces(interfaces) };
        if (environment("TCPFREEZE_PIN_ROOT") is { Length: > 0 } pinRoot)
            settings = settings with { PinRoot = AbsolutePath(pinRoot, "TCPFREEZE_PIN_ROOT") };
        if (environment("TCPFREEZE_LOG_FILE") is { Length: > 0 } logFile)
            settings = settings with { LogFile = AbsolutePath(logFile, "TCPFREEZE_LOG_FILE") };
        if (environment("TCPFREEZE_INGRESS") is { Length: > 0 } ingress)
            settings = settings with { Ingress = ParseIngress(ingress, "TCPFREEZE_INGRESS") };
        if (environment("TCPFREEZE_KICK") is { Length: > 0 } kick)
            settings = settings with { Kick = ParseBool(kick, "TCPFREEZE_KICK") };
        if (environment("TCPFREEZE_KEEP_ATTACHED") is { Length: > 0 } keep)
            settings = settings with { KeepAttached = ParseBool(keep, "TCPFREEZE_KEEP_ATTACHED") };
        return settings;
    }

    /// <summary>
    /// Reads the settings file at <paramref name="path"/> alone (no environment), as the hook reads it and
    /// under the same rules: the defaults when there is none. For the boot-time unit and the command line,
    /// which must use the pins the hook uses.
    /// </summary>
    /// <exception cref="FormatException">A setting is malformed; the message names the file and the line.</exception>
    /// <exception cref="IOException">The file is refused or unreadable; the message names it, what is wrong and what to do.</exception>
    public static HookSettings LoadFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return ReadTrusted(path) is { } lines ? Parse(lines, path) : new HookSettings();
    }

    /// <summary>Parses configuration lines ("key = value", '#' starts a comment).</summary>
    public static HookSettings Parse(IEnumerable<string> lines, string source)
    {
        var settings = new HookSettings { Source = source };
        int number = 0;
        foreach (string raw in lines)
        {
            number++;
            string line = raw.Split('#', 2)[0].Trim();
            if (line.Length == 0)
                continue;
            int equals = line.IndexOf('=');
            if (equals <= 0)
                throw new FormatException($"{source}:{number}: '{raw.Trim()}' is not 'key = value'.");
            string key = line[..equals].Trim(), value = line[(equals + 1)..].Trim();
            string where = $"{source}:{number}";
            settings = key switch
            {
                "lease-seconds" => settings with { Lease = ParseLease(value, where) },
                "interfaces" => settings with { Interfaces = ParseInterfaces(value) },
                "pin-root" => settings with { PinRoot = AbsolutePath(value, $"{where}: pin-root") },
                "log-file" => settings with { LogFile = AbsolutePath(value, $"{where}: log-file") },
                "keep-attached" => settings with { KeepAttached = ParseBool(value, $"{where}: keep-attached") },
                "kick" => settings with { Kick = ParseBool(value, $"{where}: kick") },
                "ingress" => settings with { Ingress = ParseIngress(value, $"{where}: ingress") },
                _ => throw new FormatException($"{where}: unknown setting '{key}' (known: {KnownKeys})."),
            };
        }
        return settings;
    }

    /// <summary>The keys of the settings file, as error and help messages list them.</summary>
    internal const string KnownKeys = "lease-seconds, interfaces, pin-root, log-file, keep-attached, ingress, kick";

    private static bool ParseBool(string text, string what)
        => bool.TryParse(text, out bool value) ? value : throw new FormatException($"{what} must be true or false, not '{text}'.");

    private static IngressHook ParseIngress(string text, string what)
        => SettingSyntax.TryParseIngressHook(text, out IngressHook hook)
            ? hook
            : throw new FormatException($"{what} must be xdp or tc (tc coexists with another XDP program), not '{text}'.");

    /// <summary>The largest settings file the hook reads: a real one is a few hundred bytes.</summary>
    public const long MaximumFileSize = 64 * 1024;

    /// <summary>
    /// The lines of the settings file, or null when there is none. The hook runs as root and the file
    /// says where it writes (log-file) and which pins it uses (pin-root), so it is read only when no
    /// user other than root could have written it: the file and every folder on its path must be owned
    /// by root (or by the hook's own user) and not writable by group or others (a folder may be when it
    /// is root's and sticky, as /tmp is), the rule of sshd's StrictModes. And, as the manifest, it is
    /// opened without following a link and without blocking, and read only when it is a regular file of
    /// at most <see cref="MaximumFileSize"/> bytes: a FIFO or a link to /dev/zero there would otherwise
    /// hang the hook, and CRIU with it.
    /// </summary>
    /// <exception cref="IOException">The file is refused or unreadable; the message names it, what is wrong and what to do.</exception>
    private static string[]? ReadTrusted(string path)
    {
        byte[] bytes;
        try
        {
            bytes = TrustedFile.ReadRegular(path, MaximumFileSize, "the hook settings file", requireTrustedOwner: true);
            // Checked after the file was opened: a missing file (the default path) needs no trusted folders.
            string folder = Path.GetDirectoryName(Path.GetFullPath(path)) ?? "/";
            TrustedFile.CheckFolders(global::Interop.Libc.RealPath(folder) ?? folder, path, "the hook settings file");
        }
        catch (FileRefusedException e) when (e.Reason == FileRefusal.Missing)
        {
            return null;
        }
        catch (FileRefusedException e) when (e.Reason is FileRefusal.ReadFailed or FileRefusal.OpenFailed or FileRefusal.StatFailed)
        {
            throw new IOException(e.Message, e);
        }
        catch (FileRefusedException e)
        {
            throw new IOException($"refused, the hook did nothing: {e.Message}", e);
        }
        string text;
        try
        {
            text = new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (System.Text.DecoderFallbackException e)
        {
            throw new FormatException($"the hook settings file {path} is not UTF-8 text ({e.Message})", e);
        }
        return text.TrimStart('\uFEFF').ReplaceLineEndings("\n").Split('\n');
    }

    private static TimeSpan ParseLease(string text, string where)
        => SettingSyntax.TryParseLease(text, out TimeSpan lease)
            ? lease
            : throw new FormatException($"{where}: {SettingSyntax.LeaseProblem(text)}.");

    /// <summary>
    /// CRIU runs the hook from its own working directory, which the user does not
    /// choose, so a relative path would land somewhere unexpected.
    /// </summary>
    private static string AbsolutePath(string value, string what)
        => value.StartsWith('/') ? value : throw new FormatException($"{what} must be an absolute path, not '{value}'.");

    private static IReadOnlyList<string>? ParseInterfaces(string text)
    {
        string[] names = text.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return names.Length == 0 ? null : names;
    }
}
