using System.Globalization;

namespace TcpFreeze.Migration;

/// <summary>The command line. The defaults regenerate the table in benchmarks/README.md.</summary>
internal sealed record BenchOptions
{
    public const string Usage = """
        TcpFreeze.Migration: CRIU dump + restore of nginx holding N keep-alive connections,
        with each network-lock method side by side in one run. Needs root, CRIU 4.2.1, nginx.

          --connections 0,500,1000,1500    connection counts
          --methods tcpfreeze,tcpfreeze-warm,skip,iptables,nftables
                                           (also tcpfreeze-nokick: the hook with kick = false; skip-attached:
                                           skip with the programs attached and nothing frozen;
                                           hook = tcpfreeze, hook-nokick = tcpfreeze-nokick)
          --copy-delay 0                   seconds between the dump's end and the restore's start (the image
                                           copy; the restore also waits for the old PID); a list loops like
                                           the connection counts, e.g. 0,5,30
          --runs 3                         runs per method and count (methods interleave within a run)
          --out benchmarks/results         where the CSV, Markdown and plots go
          --hook PATH                      the published hook (default: publish src/CriuHooks.Hook into a temp folder)
          --pause-ms MS                    pause between a connection's requests
                                           (default: N / 3,000 req/s; up to 1,500 connections kept within 250-500 ms)
          --recovery-seconds 60            how long to wait for every connection to answer again
          --keep-logs                      keep CRIU's dump.log and restore.log of every run next to the results
          --peer-drops-icmp                the clients' namespace drops incoming ICMP and ICMPv6 destination unreachable
                                           (one nftables rule, as a firewall or a TCP without RFC 6069): the resume kick
                                           cannot reach them, only the replay of their dropped segments does
          --fit-iptables CSV[,CSV]         fit iptables' downtime (b·N + c·N²) to the iptables rows of earlier runs' CSVs and
                                           show it, marked as a fit, where this run has no iptables measurement
          --ab                             load with ApacheBench (ab -k -c N) instead of the harness's clients
          --lazy-pages                     instead: a memory-heavy echo server (--memory-mib) with the largest
                                           --connections count, migrated across two namespace hosts with the hook,
                                           plain (dump, copy, restore) and post-copy (criu dump/restore --lazy-pages)
          --memory-mib 1024                the memory the --lazy-pages server has touched

        The paper's experiment (ApacheBench without keep-alive, Table 2's per-process breakdown, Figure 2):
          --paper                          ab -c N (a new connection per request) against nginx configured like the
                                           paper's (2 workers x 768 connections), criu dump + restore under
                                           perf record; defaults: --methods iptables,iptables-legacy,tcpfreeze,
                                           tcpfreeze-warm --runs 5 --out benchmarks/results/paper; the report and
                                           plot are rebuilt from every paper-*.csv in --out after each invocation
          --requests 500000                ab -n (the paper's count; ab is stopped 5 s after the restore anyway)
          --paper-report                   only rebuild the report and plot from the CSVs in --out
        """;

    public IReadOnlyList<int> Connections { get; init; } = [0, 500, 1000, 1500];
    public IReadOnlyList<LockMethod> Methods { get; init; } = LockMethod.Default;
    /// <summary>Seconds from the dump's end to the restore's start (simulated image copy), each one a case like a connection count.</summary>
    public IReadOnlyList<int> CopyDelays { get; init; } = [0];
    public int Runs { get; init; } = 3;
    /// <summary>The output folder; null: benchmarks/results in the repository.</summary>
    public string? Output { get; init; }
    public string? Hook { get; init; }
    public TimeSpan? Pause { get; init; }
    public TimeSpan RecoveryTimeout { get; init; } = TimeSpan.FromSeconds(60);
    public bool ApacheBench { get; init; }
    /// <summary>--lazy-pages: the pre-copy / post-copy comparison of <see cref="LazyPagesBenchmark"/> instead of the lock methods.</summary>
    public bool LazyPages { get; init; }
    public int MemoryMiB { get; init; } = 1024;

    /// <summary>Earlier runs' CSVs whose iptables rows are fitted (--fit-iptables); empty: no fit.</summary>
    public IReadOnlyList<string> IptablesFitSources { get; init; } = [];

    /// <summary>--paper: the paper's experiment (<see cref="PaperExperiment"/>); --paper-report: only its report.</summary>
    public bool Paper { get; init; }
    public bool PaperReportOnly { get; init; }
    public int Requests { get; init; } = 500_000;

    /// <summary>Where to copy each run's CRIU logs (--keep-logs); null: they are deleted with the run.</summary>
    public string? LogDirectory { get; init; }
    public bool KeepLogs { get; init; }

    /// <summary>--peer-drops-icmp: the clients never see the resume kick's ICMP messages.</summary>
    public bool PeerDropsIcmp { get; init; }

    /// <summary>The arguments as given, for the report.</summary>
    public string CommandLine { get; init; } = "";

    /// <summary>
    /// The pause between one connection's requests: total request rate about 3,000/s at most, so that the
    /// load itself does not swamp the 2-core machine (up to 1,500 connections: 250-500 ms, as before;
    /// 5,000: 1.7 s; 10,000: 3.3 s).
    /// </summary>
    public TimeSpan PauseFor(int connections)
        => Pause ?? TimeSpan.FromMilliseconds(connections <= 1500 ? Math.Clamp(connections / 3.0, 250, 500) : connections / 3.0);

    /// <summary>Parses the arguments; null when --help was asked for.</summary>
    /// <exception cref="ArgumentException">An argument is unknown or malformed.</exception>
    public static BenchOptions? Parse(string[] args)
    {
        var options = new BenchOptions { CommandLine = string.Join(' ', args) };
        bool methodsGiven = false, runsGiven = false;
        for (int i = 0; i < args.Length; i++)
        {
            string name = args[i];
            if (name is "-h" or "--help")
                return null;
            if (name is "--ab" or "--keep-logs" or "--lazy-pages" or "--paper" or "--paper-report" or "--peer-drops-icmp")
            {
                options = name switch
                {
                    "--ab" => options with { ApacheBench = true },
                    "--lazy-pages" => options with { LazyPages = true },
                    "--keep-logs" => options with { KeepLogs = true },
                    "--peer-drops-icmp" => options with { PeerDropsIcmp = true },
                    "--paper" => options with { Paper = true },
                    _ => options with { Paper = true, PaperReportOnly = true },
                };
                continue;
            }
            methodsGiven |= name == "--methods";
            runsGiven |= name == "--runs";
            if (i + 1 >= args.Length)
                throw new ArgumentException($"{name} needs a value");
            string value = args[++i];
            options = name switch
            {
                "--connections" => options with { Connections = List(value, name).Select(v => Number(v, name, 0, 60_000)).Distinct().ToArray() },
                "--methods" => options with { Methods = List(value, name).Select(LockMethod.Parse).Distinct().ToArray() },
                "--copy-delay" => options with { CopyDelays = List(value, name).Select(v => Number(v, name, 0, 3_600)).Distinct().ToArray() },
                "--runs" => options with { Runs = Number(value, name, 1, 100) },
                "--out" => options with { Output = Path.GetFullPath(value) },
                "--hook" => options with { Hook = Path.GetFullPath(value) },
                "--fit-iptables" => options with { IptablesFitSources = List(value, name).Select(Path.GetFullPath).ToArray() },
                "--pause-ms" => options with { Pause = TimeSpan.FromMilliseconds(Number(value, name, 1, 60_000)) },
                "--memory-mib" => options with { MemoryMiB = Number(value, name, 1, 16_384) },
                "--recovery-seconds" => options with { RecoveryTimeout = TimeSpan.FromSeconds(Number(value, name, 1, 3_600)) },
                "--requests" => options with { Requests = Number(value, name, 1, 20_000_000) },
                _ => throw new ArgumentException($"unknown argument '{name}'"),
            };
        }
        if (options.Paper)
        {
            if (options.ApacheBench)
                throw new ArgumentException("--paper runs ab itself (without keep-alive); leave out --ab");
            options = options with
            {
                Methods = methodsGiven ? options.Methods : LockMethod.Paper,
                Runs = runsGiven ? options.Runs : 5,
            };
        }
        return options;
    }

    private static string[] List(string value, string name)
    {
        string[] items = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return items.Length > 0 ? items : throw new ArgumentException($"{name} needs at least one value");
    }

    private static int Number(string text, string name, int min, int max)
        => int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= min && n <= max
            ? n
            : throw new ArgumentException($"{name}: '{text}' is not a whole number from {min} to {max}");
}
