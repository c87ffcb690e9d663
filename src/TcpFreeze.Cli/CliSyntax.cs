using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Net;
using TcpFreeze.CriuHooks;

namespace TcpFreeze.Cli;

/// <summary>
/// The command line: every command, option and argument, with parsers and validators
/// that turn malformed input into parse errors (exit code 2) before anything touches
/// the kernel. Values are parsed by hand, not by reflection, so NativeAOT keeps working.
/// </summary>
internal sealed class CliSyntax(CliOperations operations, TextWriter error)
{
    private readonly Option<string> _pinRoot = new("--pin-root")
    {
        Description = "Directory for TcpFreeze's pins (on bpffs); each network namespace gets its own folder below it.",
        HelpName = "DIR",
        DefaultValueFactory = _ => FreezerOptions.DefaultPinRoot,
    };

    private readonly Option<string?> _hookSettings = new("--hook-settings")
    {
        Description = $"Use the pin root of the CRIU hook's settings file (its pin-root; e.g. {HookSettings.DefaultConfigPath}), so that this command " +
                      "works on the pins the hook uses; --pin-root, when given too, wins. A missing file means the default pin root, as for the hook.",
        HelpName = "FILE",
    };

    private readonly Option<string?> _netns = new("--netns")
    {
        Description = "Network namespace to work in: a name of 'ip netns list' (/run/netns/NAME), or a namespace file such as /proc/PID/ns/net; default: the current one.",
        HelpName = "NAME|PATH",
    };

    private readonly Option<TimeSpan?> _wait = new("--wait")
    {
        Description = $"Wait at most this many seconds (0 to 3600, fractions allowed) for another TcpFreeze process that holds the pin root's lock; " +
                      $"default {FreezerOptions.DefaultLockTimeout.TotalSeconds:0}. Past it the command fails naming that process.",
        HelpName = "SECONDS",
        CustomParser = ParseWait,
    };

    /// <summary>The one-line summary of the command, also the man page's NAME line.</summary>
    internal const string Summary = "Freeze and thaw TCP connections with eBPF (XDP ingress + TC egress).";

    public Command Build()
    {
        // A plain command named tcpfreeze rather than RootCommand, whose name is the
        // executable's file name (TcpFreeze.Cli.dll under 'dotnet').
        var root = new Command("tcpfreeze",
            $"{Summary} Exit codes: {ExitCodes.Success} done, {ExitCodes.Failure} failed, {ExitCodes.Usage} bad command line. " +
            "The options below go before or after the command, for the commands that list them.")
        {
            new HelpOption(),
            new VersionOption(),
        };
        Option[] shared = [_pinRoot, _hookSettings, _netns, _wait];
        foreach (Option option in shared)
            root.Options.Add(option);
        // Each command lists the shared options it honours (the same Option objects, so a value given before the
        // command reaches it too); a shared option given before a command that does not use it is a usage error,
        // never silently ignored.
        Option[] namespaced = [_pinRoot, _hookSettings, _netns, _wait];
        root.Subcommands.Add(Uses(AttachCommand(), namespaced));
        root.Subcommands.Add(Uses(DetachCommand(), namespaced));
        root.Subcommands.Add(Uses(GcCommand(), _pinRoot, _hookSettings, _wait));
        root.Subcommands.Add(Uses(FreezeCommand(), namespaced));
        root.Subcommands.Add(Uses(ThawCommand(), namespaced));
        root.Subcommands.Add(Uses(ListCommand(), namespaced));
        root.Subcommands.Add(Uses(StatsCommand(), namespaced));
        root.Subcommands.Add(Uses(CriuConfigCommand()));
        root.Subcommands.Add(Uses(CompletionCommand(root)));
        root.Subcommands.Add(Uses(ManPageCommand(root)));
        foreach (Command command in root.Subcommands)
            foreach (Option option in shared.Where(o => !command.Options.Contains(o)))
                command.Validators.Add(result =>
                {
                    if (result.GetResult(option) is { Implicit: false })
                        result.AddError($"{command.Name} does not use {option.Name}; see 'tcpfreeze {command.Name} --help'.");
                });
        return root;
    }

    private static Command Uses(Command command, params Option[] shared)
    {
        foreach (Option option in shared)
            command.Options.Add(option);
        return command;
    }

    private FreezerOptions Options(ParseResult parse)
    {
        string? netns = parse.GetValue(_netns);
        return new FreezerOptions
        {
            PinRoot = PinRoot(parse),
            Namespace = netns is null ? NetworkNamespace.Current : NamespaceOf(netns),
            LockTimeout = parse.GetValue(_wait) ?? FreezerOptions.DefaultLockTimeout,
        };
    }

    /// <summary>--pin-root when given, else the hook settings file's pin-root when --hook-settings names one, else the default.</summary>
    private string PinRoot(ParseResult parse)
    {
        if (parse.GetResult(_pinRoot) is { Implicit: false })
            return parse.GetValue(_pinRoot) ?? FreezerOptions.DefaultPinRoot;
        return parse.GetValue(_hookSettings) is { Length: > 0 } file ? HookSettings.LoadFile(file).PinRoot : FreezerOptions.DefaultPinRoot;
    }

    /// <summary>A bare name is one of /run/netns, as 'ip netns' and <see cref="NetworkNamespace.Named"/> take it; anything with a slash is a file.</summary>
    internal static NetworkNamespace NamespaceOf(string netns)
        => netns.Contains('/') || netns is "." or ".." ? NetworkNamespace.FromPath(netns) : NetworkNamespace.Named(netns);

    // ------------------------------------------------------------------ commands

    private Command AttachCommand()
    {
        var devices = new Option<string[]>("--dev")
        {
            Description = "Interface to attach to (repeatable); default: every interface that is up, loopback included.",
            HelpName = "IFACE",
        };
        var mode = new Option<XdpAttachMode>("--xdp-mode")
        {
            Description = "XDP mode: auto (the default: native where the driver has it, else generic), native only, or generic.",
            HelpName = "auto|native|generic",
            CustomParser = result => Choice<XdpAttachMode>(result, SettingSyntax.TryParseXdpMode, "--xdp-mode", "a mode; use auto, native or generic"),
        };
        var ingress = new Option<IngressHook>("--ingress")
        {
            Description = "Where the ingress program runs: xdp (the default) or tc, a TC clsact ingress filter that coexists with " +
                          "another XDP program on the interface (it stays; TcpFreeze sees what it passes). Attaching again with the " +
                          "other value moves TcpFreeze's ingress program (ingress stays guarded meanwhile) and keeps what is frozen.",
            HelpName = "xdp|tc",
            CustomParser = result => Choice<IngressHook>(result, SettingSyntax.TryParseIngressHook, "--ingress", "an ingress hook; use xdp or tc"),
        };
        var replace = new Option<bool>("--replace")
        {
            Description = "Replace another XDP program (with --ingress xdp) or TC filter found at TcpFreeze's place; " +
                          "to keep another XDP program instead, use --ingress tc.",
        };

        var capacity = new Option<uint?>("--capacity")
        {
            Description = $"How many connections the namespace's map holds (default {new FreezerOptions().MaxConnections:N0}); " +
                          "it is fixed when the map is first created: to change it, detach and attach again with this option.",
            HelpName = "N",
            CustomParser = result =>
            {
                string text = result.Tokens[0].Value;
                if (uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out uint value) && value is > 0 and <= MaximumCapacity)
                    return value;
                result.AddError($"--capacity: '{text}' is not a number of connections from 1 to {MaximumCapacity:N0}.");
                return null;
            },
        };

        var command = new Command("attach", "Load the programs (once per namespace), pin them and attach them to the interfaces.")
        {
            devices, ingress, mode, replace, capacity,
        };
        command.Validators.Add(result =>
        {
            if (TryGetValue(result, ingress, out IngressHook hook) && hook == IngressHook.Tc && result.GetResult(mode) is { Implicit: false })
                result.AddError("--xdp-mode applies to --ingress xdp; with --ingress tc no XDP program is attached.");
        });
        command.SetAction(parse => Cli.Guard(error, () => operations.Attach(Options(parse) with
        {
            Interfaces = parse.GetValue(devices) is { Length: > 0 } names ? names : null,
            IngressHook = parse.GetValue(ingress),
            XdpMode = parse.GetValue(mode),
            ReplaceForeignPrograms = parse.GetValue(replace),
            MaxConnections = parse.GetValue(capacity) ?? new FreezerOptions().MaxConnections,
        }, capacityAsked: parse.GetValue(capacity) is not null)));
        return command;
    }

    private Command DetachCommand()
    {
        var ifIdle = new Option<bool>("--if-idle")
        {
            Description = "Detach only when nothing is frozen (entries whose lease ended do not count); otherwise keep everything, say what stays " +
                          "frozen and for how long, and exit 0. For a service stop or shutdown during a CRIU migration, which must not thaw it.",
        };
        var command = new Command("detach", "Detach the programs from every interface of the namespace and remove the pins, whatever is left of them; everything frozen flows again " +
                                            "(with --if-idle: only when nothing is frozen). Nothing attached is not an error (exit 0).")
        {
            ifIdle,
        };
        command.SetAction(parse => Cli.Guard(error, () => parse.GetValue(ifIdle) ? operations.DetachIfIdle(Options(parse)) : operations.Detach(Options(parse))));
        return command;
    }

    private Command GcCommand()
    {
        var command = new Command("gc", "Remove the pins (and with them the programs and maps) of network namespaces that no longer exist, under the pin root; " +
                                        "a deleted namespace leaves them behind where no --netns can reach them, so gc works on every namespace's pins at once. Namespaces still reachable (a process in it or " +
                                        "holding it, a mount such as /run/netns/NAME) keep theirs. Nothing to remove is not an error (exit 0).");
        command.SetAction(parse => Cli.Guard(error, () => operations.CollectGarbage(PinRoot(parse), parse.GetValue(_wait) ?? FreezerOptions.DefaultLockTimeout)));
        return command;
    }

    private Command FreezeCommand()
    {
        Argument<IPEndPoint?> local = EndpointArgument("LOCAL", "This host's end of the connection, e.g. 198.18.0.1:8080 or [2001:db8::1]:8080.");
        Argument<IPEndPoint?> remote = EndpointArgument("REMOTE", "The peer's end of the connection.");
        Option<int?> pid = PidOption("Freeze every connection and listener of process PID and its descendants, in its network namespace.");
        Option<IPEndPoint[]> endpoints = EndpointOption("Freeze a local endpoint (repeatable): every segment to or from it, new SYNs included. 0.0.0.0:PORT means any IPv4 address; " +
                                                       "[::]:PORT means any address of either family, as a dual-stack listener on [::] accepts both (it freezes 0.0.0.0:PORT too).");
        var lease = new Option<TimeSpan?>("--lease")
        {
            Description = $"Thaw by itself after this many seconds (0.001 to 86400, fractions allowed), even if nobody calls thaw; " +
                          $"default {TcpFreeze.Lease.Default.TotalSeconds:0} (the library's default, as the CRIU hook). 'none': frozen until thaw, detach or reboot.",
            HelpName = "SECONDS|none",
            CustomParser = ParseLease,
        };

        var command = new Command("freeze", "Freeze a connection (LOCAL REMOTE), endpoints (--endpoint) or a process tree's sockets (--pid).")
        {
            local, remote, pid, endpoints, lease,
        };
        command.Validators.Add(result => ValidateTargets(result, "freeze", local, remote, pid, endpoints, all: null));
        command.SetAction(parse => Cli.Guard(error, () =>
        {
            FreezerOptions options = Options(parse);
            // Nothing stays frozen for ever unless asked: no --lease is the library's default lease.
            TimeSpan leaseValue = parse.GetValue(lease) ?? options.DefaultLease;
            return parse.GetValue(pid) is int processId
                ? operations.FreezeProcess(options, processId, leaseValue)
                : operations.Freeze(options, Connection(parse, local, remote), Endpoints(parse, endpoints), leaseValue);
        }));
        return command;
    }

    private Command ThawCommand()
    {
        Argument<IPEndPoint?> local = EndpointArgument("LOCAL", "This host's end of the connection.");
        Argument<IPEndPoint?> remote = EndpointArgument("REMOTE", "The peer's end of the connection.");
        Option<int?> pid = PidOption("Thaw every connection and listener process PID and its descendants hold now.");
        Option<IPEndPoint[]> endpoints = EndpointOption("Thaw a frozen local endpoint (repeatable); [::]:PORT thaws 0.0.0.0:PORT too, as freeze froze both.");
        var all = new Option<bool>("--all")
        {
            Description = "Thaw everything frozen in the namespace, from whatever TcpFreeze left there (pins, or attached programs whose pins are gone); " +
                          "nothing attached is not an error (exit 0).",
        };

        var noKick = new Option<bool>("--no-kick")
        {
            Description = "Do not send the resume kick (ICMP unreachable messages that make both ends of each released connection " +
                          "retransmit at once) nor replay the segments kept while frozen; the connections then resume at their next " +
                          "retransmission, up to about as long after the thaw as they were frozen.",
        };
        var command = new Command("thaw", "Thaw a connection, endpoints, a process tree's sockets or everything. Thawing what is not frozen is not an error.")
        {
            local, remote, pid, endpoints, all, noKick,
        };
        command.Validators.Add(result => ValidateTargets(result, "thaw", local, remote, pid, endpoints, all));
        command.SetAction(parse => Cli.Guard(error, () =>
        {
            FreezerOptions options = Options(parse);
            bool kick = !parse.GetValue(noKick);
            if (parse.GetValue(all))
                return operations.ThawAll(options, kick);
            return parse.GetValue(pid) is int processId
                ? operations.ThawProcess(options, processId, kick)
                : operations.Thaw(options, Connection(parse, local, remote), Endpoints(parse, endpoints), kick);
        }));
        return command;
    }

    private Command ListCommand()
    {
        var command = new Command("list", "List the frozen connections and endpoints with their drop counts and lease left.");
        Func<ParseResult, OutputFormat> format = FormatOptions(command, OutputFormat.Text, OutputFormat.Json);
        command.SetAction(parse => Cli.Guard(error, () => operations.List(Options(parse), format(parse))));
        return command;
    }

    private Command StatsCommand()
    {
        var command = new Command("stats", "Show the packet counters of the kernel programs and how much is frozen. With --format prometheus: " +
                                           "the Prometheus text exposition format, for node_exporter's textfile collector; nothing attached is then " +
                                           "tcpfreeze_attached 0 and exit 0.");
        Func<ParseResult, OutputFormat> format = FormatOptions(command, OutputFormat.Text, OutputFormat.Json, OutputFormat.Prometheus);
        command.SetAction(parse => Cli.Guard(error, () => operations.Stats(Options(parse), format(parse))));
        return command;
    }

    private Command CriuConfigCommand()
    {
        var engine = new Option<CriuEngine>("--engine")
        {
            Description = "Who runs CRIU, which picks the file: criu (the default) uses default.conf, which CRIU always reads; " +
                          "lxc (lxc-checkpoint runs CRIU itself) is the same; runc and podman use runc.conf, which only runc hands to CRIU.",
            HelpName = "criu|lxc|runc|podman",
            CustomParser = result => Choice<CriuEngine>(result, static (string? text, out CriuEngine engine) =>
            {
                (bool ok, engine) = text switch
                {
                    "criu" or "lxc" => (true, CriuEngine.Criu),
                    "runc" => (true, CriuEngine.Runc),
                    "podman" => (true, CriuEngine.Podman),
                    _ => (false, CriuEngine.Criu),
                };
                return ok;
            }, "--engine", "an engine; use criu, lxc, runc or podman"),
        };
        var hook = new Option<string?>("--hook")
        {
            Description = $"The hook executable to name; default: the {CriuConfiguration.HookFileName} next to this command if it is there, else {CriuConfiguration.DefaultHookPath}.",
            HelpName = "PATH",
        };
        var write = new Option<bool>("--write")
        {
            Description = "Write the lines into the engine's file, in a block between '# BEGIN tcpfreeze' and '# END tcpfreeze' that replaces an older one; other lines stay as they are.",
        };
        var remove = new Option<bool>("--remove") { Description = "Remove that block; every other byte of the file stays as it is." };
        var directory = new Option<string>("--config-dir")
        {
            Description = "CRIU's configuration directory.",
            HelpName = "DIR",
            DefaultValueFactory = _ => CriuConfiguration.DefaultDirectory,
        };

        var command = new Command("criu-config",
            "Print (or --write, or --remove) the CRIU configuration that makes CRIU freeze connections with the TcpFreeze hook: " +
            "tcp-established, network-lock skip, action-script HOOK.")
        {
            engine, hook, write, remove, directory,
        };
        command.Validators.Add(result =>
        {
            if (result.GetValue(write) && result.GetValue(remove))
                result.AddError("criu-config: use --write or --remove, not both.");
            else if (result.GetValue(hook) is { } path && CriuConfiguration.HookPathProblem(path) is { } problem)
                result.AddError($"--hook: {problem}.");
            else if (result.GetValue(directory) is { Length: 0 })
                result.AddError("--config-dir: the directory is empty.");
        });
        command.SetAction(parse => Cli.Guard(error, () =>
        {
            var configuration = new CriuConfiguration(
                parse.GetValue(engine),
                parse.GetValue(hook) ?? CriuConfiguration.FindHook(AppContext.BaseDirectory),
                parse.GetValue(directory) ?? CriuConfiguration.DefaultDirectory);
            if (parse.GetValue(write))
                return operations.WriteCriuConfig(configuration);
            return parse.GetValue(remove) ? operations.RemoveCriuConfig(configuration) : operations.PrintCriuConfig(configuration);
        }));
        return command;
    }

    private Command CompletionCommand(Command root)
    {
        var shell = new Argument<string>("SHELL")
        {
            Description = "The shell: bash (the only one so far).",
            HelpName = "bash",
            CustomParser = result => Choice<bool>(result, static (string? text, out bool ok) => ok = text == "bash", "SHELL", "a shell this command knows; use bash")
                ? result.Tokens[0].Value : "",
        };
        var command = new Command("completion", "Print the shell completion script, written from these command definitions: " +
                                                "source <(tcpfreeze completion bash); scripts/install.sh installs it for bash-completion.") { shell };
        command.SetAction(parse => Cli.Guard(error, () => operations.Print(CommandReference.Bash(root))));
        return command;
    }

    private Command ManPageCommand(Command root)
    {
        var command = new Command("manpage", "Print the tcpfreeze(8) man page (roff), written from these command definitions; scripts/install.sh installs it.");
        command.SetAction(parse => Cli.Guard(error, () => operations.Print(CommandReference.ManPage(root))));
        return command;
    }

    // ------------------------------------------------------------------ arguments and options

    /// <summary>
    /// The one format flag of every command that prints data: <c>--format</c> (<c>-o</c>, as kubectl) with the formats
    /// the command has, and <c>-j</c> / <c>--json</c> (as ip and bpftool) for <c>--format json</c>. A contradiction
    /// (<c>--json --format text</c>) is a usage error.
    /// </summary>
    private static Func<ParseResult, OutputFormat> FormatOptions(Command command, params OutputFormat[] formats)
    {
        string names = string.Join("|", formats.Select(Word));
        var format = new Option<OutputFormat?>("--format", "-o")
        {
            Description = $"Output format: {string.Join(", ", formats.Select(Word))} (default text). json is one document of a versioned, " +
                          "documented schema (docs/cli-json.md; its field schemaVersion says which).",
            HelpName = names,
            CustomParser = result => Choice<OutputFormat>(result, (string? text, out OutputFormat value) =>
            {
                value = formats.FirstOrDefault(f => Word(f) == text);
                return formats.Any(f => Word(f) == text);
            }, "--format", $"a format of {command.Name}; use {string.Join(", ", formats.Select(Word).SkipLast(1))} or {Word(formats[^1])}"),
        };
        var json = new Option<bool>("--json", "-j") { Description = "The same as --format json." };
        command.Options.Add(format);
        command.Options.Add(json);
        command.Validators.Add(result =>
        {
            if (result.GetValue(json) && TryGetValue(result, format, out OutputFormat? f) && f is { } given && given != OutputFormat.Json)
                result.AddError($"{command.Name}: --json and --format {Word(given)} contradict each other; use one.");
        });
        return parse => parse.GetValue(format) ?? (parse.GetValue(json) ? OutputFormat.Json : OutputFormat.Text);
    }

    private static string Word(OutputFormat format) => format.ToString().ToLowerInvariant();

    private static Argument<IPEndPoint?> EndpointArgument(string name, string description) => new(name)
    {
        Description = description,
        Arity = ArgumentArity.ZeroOrOne,
        CustomParser = result => result.Tokens.Count == 0 ? null : ParseEndpoint(result, result.Tokens[0].Value, name),
    };

    private static Option<IPEndPoint[]> EndpointOption(string description) => new("--endpoint")
    {
        Description = description,
        HelpName = "LOCAL",
        CustomParser = result =>
        {
            var parsed = new List<IPEndPoint>(result.Tokens.Count);
            foreach (Token token in result.Tokens)
                if (ParseEndpoint(result, token.Value, "--endpoint") is { } endpoint)
                    parsed.Add(endpoint);
            return parsed.ToArray();
        },
    };

    private static Option<int?> PidOption(string description) => new("--pid")
    {
        Description = description,
        HelpName = "PID",
        CustomParser = result =>
        {
            string text = result.Tokens[0].Value;
            if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) && value > 0)
                return value;
            result.AddError($"--pid: '{text}' is not a process id (a positive integer).");
            return null;
        },
    };

    private static IPEndPoint? ParseEndpoint(ArgumentResult result, string text, string what)
    {
        if (TcpEndpointText.TryParse(text, allowPortZero: false, out IPEndPoint? endpoint, out string? message))
            return endpoint;
        result.AddError($"{what}: {message}");
        return null;
    }

    /// <summary>The one lease rule (<see cref="SettingSyntax.TryParseLease"/>), shared with the hook's settings, or "none".</summary>
    private static TimeSpan? ParseLease(ArgumentResult result)
    {
        string text = result.Tokens[0].Value;
        if (text == "none")
            return TcpFreeze.Lease.Forever;
        if (SettingSyntax.TryParseLease(text, out TimeSpan lease))
            return lease;
        result.AddError($"--lease: {SettingSyntax.LeaseProblem(text)}, or 'none'.");
        return null;
    }

    /// <summary>The largest --capacity: 16 Mi entries (about 1 GiB of kernel memory), far past any host's connections.</summary>
    private const uint MaximumCapacity = 1u << 24;

    /// <summary>The longest --wait: an hour is already far past any healthy holder.</summary>
    private static readonly TimeSpan MaximumWait = TimeSpan.FromHours(1);

    private static TimeSpan? ParseWait(ArgumentResult result)
    {
        string text = result.Tokens[0].Value;
        if (!double.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double seconds) || !double.IsFinite(seconds))
        {
            result.AddError($"--wait: '{text}' is not a number of seconds (0 to {MaximumWait.TotalSeconds:0}).");
            return null;
        }
        if (seconds > MaximumWait.TotalSeconds)
        {
            result.AddError($"--wait: {text} s is too long; it must be at most {MaximumWait.TotalSeconds:0} s.");
            return null;
        }
        return TimeSpan.FromSeconds(seconds);
    }

    private delegate bool TryParse<T>(string? text, out T value);

    /// <summary>The one parser for a word-valued option: the value, or an error "OPTION: 'TEXT' is not WHAT.".</summary>
    private static T Choice<T>(ArgumentResult result, TryParse<T> parse, string option, string what) where T : struct
    {
        string text = result.Tokens[0].Value;
        if (parse(text, out T value))
            return value;
        result.AddError($"{option}: '{text}' is not {what}.");
        return default;
    }

    /// <summary>
    /// Exactly one kind of target: LOCAL REMOTE and --endpoint may go together (both
    /// name keys in one namespace); --pid and --all stand alone. --pid brings its own
    /// network namespace, so --netns would be contradictory.
    /// </summary>
    private void ValidateTargets(CommandResult result, string verb, Argument<IPEndPoint?> local, Argument<IPEndPoint?> remote,
        Option<int?> pid, Option<IPEndPoint[]> endpoints, Option<bool>? all)
    {
        // A malformed value has its own parse error, which says more than anything here.
        if (!TryGetValue<IPEndPoint?>(result, local, out IPEndPoint? localValue) || !TryGetValue<IPEndPoint?>(result, remote, out IPEndPoint? remoteValue)
            || !TryGetValue(result, pid, out _) || !TryGetValue(result, endpoints, out _))
            return;
        bool hasLocal = result.GetResult(local) is { Tokens.Count: > 0 };
        bool hasRemote = result.GetResult(remote) is { Tokens.Count: > 0 };
        bool hasPid = result.GetResult(pid) is { Implicit: false };
        bool hasEndpoints = result.GetResult(endpoints) is { Implicit: false };
        bool hasAll = all is not null && result.GetValue(all);
        bool hasNetns = result.GetResult(_netns) is { Implicit: false };

        if (hasLocal && !hasRemote)
            result.AddError($"{verb} LOCAL REMOTE needs both ends of the connection; REMOTE is missing.");
        else if (hasAll && (hasLocal || hasPid || hasEndpoints))
            result.AddError($"{verb} --all thaws everything; do not combine it with LOCAL REMOTE, --pid or --endpoint.");
        else if (hasPid && (hasLocal || hasEndpoints))
            result.AddError($"{verb} --pid acts on a process's own sockets; do not combine it with LOCAL REMOTE or --endpoint.");
        else if (hasPid && hasNetns)
            result.AddError($"{verb} --pid works in the process's own network namespace; do not combine it with --netns.");
        else if (!hasLocal && !hasPid && !hasEndpoints && !hasAll)
            result.AddError(all is null
                ? "say what to freeze: LOCAL REMOTE, --pid PID or --endpoint LOCAL."
                : "say what to thaw: LOCAL REMOTE, --pid PID, --endpoint LOCAL or --all.");
        else if (localValue is { } l && remoteValue is { } r)
        {
            try
            {
                _ = new ConnectionKey(l, r);
            }
            catch (ArgumentException e)
            {
                result.AddError(e.Message);
            }
        }
    }

    /// <summary>A value, or false when its custom parser reported an error (GetValue would throw).</summary>
    private static bool TryGetValue<T>(CommandResult result, Argument<T> argument, out T? value)
    {
        try
        {
            value = result.GetValue(argument);
            return true;
        }
        catch (InvalidOperationException)
        {
            value = default;
            return false;
        }
    }

    private static bool TryGetValue<T>(CommandResult result, Option<T> option, out T? value)
    {
        try
        {
            value = result.GetValue(option);
            return true;
        }
        catch (InvalidOperationException)
        {
            value = default;
            return false;
        }
    }

    private static ConnectionKey? Connection(ParseResult parse, Argument<IPEndPoint?> local, Argument<IPEndPoint?> remote)
        => parse.GetValue(local) is { } l && parse.GetValue(remote) is { } r ? new ConnectionKey(l, r) : null;

    /// <summary>
    /// The endpoints given, with [::]:PORT standing for both families: a listener on [::] (dual-stack, Linux's default)
    /// accepts IPv4 clients too, whose packets are IPv4 (to 0.0.0.0:PORT in the programs' terms), so freezing only the
    /// IPv6 wildcard let IPv4 clients through while the help said "any address".
    /// </summary>
    internal static EndpointKey[] ExpandAnyAddress(IEnumerable<IPEndPoint> endpoints)
        => endpoints.SelectMany(e => e.Address.Equals(IPAddress.IPv6Any)
                ? new[] { new EndpointKey(e), new EndpointKey(new IPEndPoint(IPAddress.Any, e.Port)) }
                : [new EndpointKey(e)])
            .Distinct()
            .ToArray();

    private static EndpointKey[] Endpoints(ParseResult parse, Option<IPEndPoint[]> endpoints)
        => ExpandAnyAddress(parse.GetValue(endpoints) ?? []);
}
