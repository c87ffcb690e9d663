using System.Globalization;
using System.Text;

namespace TcpFreeze.Migration;

/// <summary>The Markdown report: one row per method and connection count, ratios, hook steps, failures. Formats with the invariant culture (the project sets InvariantGlobalization).</summary>
internal static class Report
{
    private static readonly string[] HookActions = ["pre-dump", "post-dump", "pre-restore", "pre-resume"];

    /// <summary>The file system type of the temporary folder, where each run keeps its images (disk or memory changes the floor).</summary>
    private static string TempFileSystem()
    {
        try
        {
            return new DriveInfo(Path.GetTempPath()).DriveFormat;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return "file system unknown";
        }
    }

    public static string Markdown(IReadOnlyList<RunResult> results, BenchOptions options, MachineInfo machine, DateTime started, DateTime finished, string plotBaseName, IptablesFit? fit = null)
    {
        var md = new StringBuilder();
        IReadOnlyList<LockMethod> methods = options.Methods;
        bool ab = options.ApacheBench;

        md.AppendLine(($"# CRIU migration: network-lock methods side by side, {started:yyyy-MM-dd HH:mm} UTC"));
        md.AppendLine();
        md.AppendLine(($"- Date: {started:yyyy-MM-dd HH:mm:ss} to {finished:HH:mm:ss} UTC ({(finished - started).TotalMinutes:F0} min), {results.Count} runs."));
        md.AppendLine($"- Machine: {machine}.");
        md.AppendLine($"- Images and work folder: under {Path.GetTempPath()} ({TempFileSystem()}; TMPDIR chooses it, e.g. TMPDIR=/dev/shm for memory).");
        md.AppendLine($"- Command: `dotnet run -c Release --project benchmarks/TcpFreeze.Migration --{(options.CommandLine.Length > 0 ? " " + options.CommandLine : "")}`");
        md.AppendLine("- Scenario, per method, connection count N and run, in a fresh pair of test namespaces: Debian's nginx (master + 1 worker, " +
                      "keep-alive) in namespace B; " + (ab
                          ? "`ab -k -r -s 900 -c N` from namespace A, started 3 s (+1 ms per connection) before the dump and stopped " +
                            "with SIGINT 5 s after the restore (ab time: its whole run); "
                          : "N HTTP/1.1 keep-alive connections from namespace A, each sending a request, checking the reply and pausing " +
                            "(250-500 ms: N / 3,000 req/s), all answered 3 times before the dump; ") +
                      "`criu dump --tcp-established -v4`, wait until the old PID is gone and the copy delay (from the dump's end) has passed, " +
                      "`criu restore -d`; then up to " +
                      ($"{options.RecoveryTimeout.TotalSeconds:F0} s for every connection to answer twice more."));
        md.AppendLine("- Copy delay (`--copy-delay`): seconds from the dump's end to the restore's start, simulating the copy of the images " +
                      "to another host. Resume lag: for each request in flight across the migration (sent before the restore ended, not " +
                      "answered when it ended), the time from the restore's end to its answer; p50, p99 (nearest rank) and max per run.");
        md.AppendLine("- Downtime: dump start to restore end (includes waiting for the PID and the copy delay). Longest client gap: the longest time between two " +
                      "consecutive replies on any surviving connection, from just before the dump (includes the pause and TCP's " +
                      "retransmission back-off after the thaw). Survived: answered again after the restore and never failed.");
        md.AppendLine(($"- Figures: median of the successful runs, (min-max) when there are several. Methods take turns within each run, so machine noise hits them alike."));
        md.AppendLine();
        md.AppendLine("Methods:");
        foreach (LockMethod m in methods)
            md.AppendLine($"- `{m.Name}`: {m.Description}.");
        md.AppendLine();

        md.AppendLine("## Downtime and what the clients saw");
        md.AppendLine();
        md.AppendLine(ab
            ? "| method | connections | copy delay | runs ok | dump | restore | downtime | ab time | ab requests | ab failed | notes |"
            : "| method | connections | copy delay | runs ok | dump | restore | downtime | longest client gap | survived | notes |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|" + (ab ? "---:|" : "") + "---|");
        foreach ((int n, int d) in Cases(results))
            foreach (LockMethod m in methods)
            {
                List<RunResult> runs = Select(results, m, n, d);
                if (runs.Count == 0)
                    continue;
                List<RunResult> ok = runs.Where(r => r.Status == RunResult.StatusOk).ToList();
                string clients = ab
                    ? $"{Spread(runs.Select(r => r.AbSeconds * 1000), seconds: true)} | {Spread(runs.Select(r => (double?)r.AbCompleteRequests), "F0")} | " +
                      $"{Spread(runs.Select(r => (double?)r.AbFailedRequests), "F0")}"
                    : $"{Spread(ok.Select(r => r.LongestGapMs), seconds: true)} | {SurvivedCell(runs, n)}";
                md.AppendLine(($"| {m.Name} | {n:N0} | {d} s | {ok.Count}/{runs.Count} | {Spread(ok.Select(r => r.DumpMs), seconds: true)} | " +
                                        $"{Spread(ok.Select(r => r.RestoreMs), seconds: true)} | {Spread(ok.Select(r => r.DowntimeMs), seconds: true)} | " +
                                        $"{clients} | {Notes(runs)} |"));
            }
        md.AppendLine();

        if (!ab && results.Any(r => r.ResumeInFlight is not null))
        {
            md.AppendLine("## Resume lag: restore end to the answer of each request in flight");
            md.AppendLine();
            md.AppendLine("Per run, over the requests that were sent before `criu restore` ended and not answered when it ended (with the hook, " +
                          "requests answered between the thaw at pre-resume and CRIU's exit are not in flight by this definition): p50, p99 " +
                          "and max in ms; each cell the median of the runs (min-max). `in flight`: how many such requests (median of the runs); " +
                          "`answered before the restore's end`: connections whose first answer after the dump's end came before `criu restore` " +
                          "exited (their lag is at most 0; with none in flight, the plot draws them at its 1 ms floor); " +
                          "`never answered`: connections with no answer at all after the restore (lost, not in the figures). " +
                          "`all held`: the in-flight requests and those answered before the restore's end together (each connection's first " +
                          "answer after the dump's end, for a request sent before the restore's end), answers before the end counted as 0 ms. " +
                          "`tcpfreeze` sends the resume kick at pre-resume (`kick = true`, the hook's default), `tcpfreeze-nokick` does not.");
            md.AppendLine();
            md.Append(ResumeLagTable(results, methods));
            md.AppendLine();
            string lagPlot = plotBaseName.Replace("migration-", "resume-lag-", StringComparison.Ordinal);
            md.AppendLine($"![resume lag against copy delay]({lagPlot}.png)");
            md.AppendLine();
            md.AppendLine($"Vector version: [{lagPlot}.svg]({lagPlot}.svg).");
            md.AppendLine();
        }

        AppendRatios(md, results);
        AppendIptablesFit(md, results, fit);
        AppendHookSteps(md, results, methods);
        AppendSocketDump(md, results, methods);
        AppendFailures(md, results);

        md.AppendLine("## Plot");
        md.AppendLine();
        md.AppendLine($"![downtime against connections]({plotBaseName}.png)");
        md.AppendLine();
        md.AppendLine($"Vector version: [{plotBaseName}.svg]({plotBaseName}.svg). Raw rows: the CSV of the same timestamp.");
        return md.ToString();
    }

    /// <summary>The resume-lag table (Markdown; also the console summary): one row per method, connection count and copy delay.</summary>
    public static string ResumeLagTable(IReadOnlyList<RunResult> results, IReadOnlyList<LockMethod> methods)
    {
        var md = new StringBuilder();
        md.AppendLine("| method | connections | copy delay | runs ok | in flight | resume lag p50 | p99 | max | answered before the restore's end | " +
                      "never answered | all held: p50 | p99 | max |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach ((int n, int d) in Cases(results))
            foreach (LockMethod m in methods)
            {
                List<RunResult> runs = Select(results, m, n, d);
                if (runs.Count == 0)
                    continue;
                List<RunResult> ok = runs.Where(r => r.Status == RunResult.StatusOk && r.ResumeInFlight is not null).ToList();
                md.AppendLine($"| {m.Name} | {n:N0} | {d} s | {ok.Count}/{runs.Count} | {Spread(ok.Select(r => (double?)r.ResumeInFlight), "F0")} | " +
                              $"{Ms(ok.Select(r => r.ResumeLagP50Ms))} | {Ms(ok.Select(r => r.ResumeLagP99Ms))} | {Ms(ok.Select(r => r.ResumeLagMaxMs))} | " +
                              $"{Spread(ok.Select(r => (double?)r.ResumedBeforeEnd), "F0")} | {Spread(ok.Select(r => (double?)r.ResumeUnanswered), "F0")} | " +
                              $"{Ms(ok.Select(r => r.ResumeHeldP50Ms))} | {Ms(ok.Select(r => r.ResumeHeldP99Ms))} | {Ms(ok.Select(r => r.ResumeHeldMaxMs))} |");
            }
        return md.ToString();
    }

    private static string Ms(IEnumerable<double?> values) => Spread(values, "F0") is var cell && cell != "-" ? cell + " ms" : cell;

    private static void AppendRatios(StringBuilder md, IReadOnlyList<RunResult> results)
    {
        // Every hook method of the run, in the order of LockMethod.All: cold, warm, agent, ...
        string[] hooks = LockMethod.All.Where(m => m.Hook && results.Any(r => r.Method == m.Name)).Select(m => m.Name).ToArray();
        if (hooks.Length == 0)
            return;
        md.AppendLine("## TcpFreeze against the floor (no lock) and the default (iptables), same run");
        md.AppendLine();
        md.AppendLine("Median downtimes. `÷ skip`: how much longer than no lock at all (which loses connections); " +
                      "`iptables ÷`: how many times longer CRIU's default lock takes (above 1: the hook is faster).");
        md.AppendLine();
        md.AppendLine("| connections | copy delay | skip | iptables | " + string.Join(" | ", hooks.Select(h => $"{h} | {h} ÷ skip | iptables ÷ {h}")) + " |");
        md.AppendLine("|---:|---:|---:|---:|" + string.Concat(Enumerable.Repeat("---:|---:|---:|", hooks.Length)));
        foreach ((int n, int d) in Cases(results))
        {
            double? skip = MedianDowntime(results, LockMethod.Skip.Name, n, d), iptables = MedianDowntime(results, LockMethod.Iptables.Name, n, d);
            var cells = new List<string>();
            foreach (string hook in hooks)
            {
                double? downtime = MedianDowntime(results, hook, n, d);
                cells.Add($"{Precise(downtime)} | {Ratio(downtime, skip)} | {Ratio(iptables, downtime)}");
            }
            md.AppendLine($"| {n:N0} | {d} s | {Precise(skip)} | {Precise(iptables)} | {string.Join(" | ", cells)} |");
        }
        md.AppendLine();
    }

    /// <summary>Milliseconds below a second (a few ms tell methods apart there), seconds above.</summary>
    private static string Precise(double? ms) => ms is < 1000 and { } v ? $"{v.ToString("F0", CultureInfo.InvariantCulture)} ms" : MigrationScenario.Seconds(ms);

    private static void AppendHookSteps(StringBuilder md, IReadOnlyList<RunResult> results, IReadOnlyList<LockMethod> methods)
    {
        List<LockMethod> hooked = methods.Where(m => m.Hook && results.Any(r => r.Method == m.Name)).ToList();
        if (hooked.Count == 0)
            return;
        md.AppendLine("## The hook's steps (median ms)");
        md.AppendLine();
        md.AppendLine("Each cell: the hook's own time as it logs it (`tcpfreeze-hook: ACTION: ... in X ms`) / the executable's start to exit " +
                      "as CRIU's log shows it (from the line naming the script, just before the fork, to CRIU's next line). " +
                      "`other runs`: the hook's runs at the other actions it has nothing to do at (it exits at once): how many per migration (total exec time). " +
                      "`pre-attach`: attaching before the dump (tcpfreeze-warm, outside the downtime).");
        md.AppendLine();
        md.AppendLine("| method | connections | copy delay | " + string.Join(" | ", HookActions) + " | other runs | pre-attach |");
        md.AppendLine("|---|---:|---:|" + string.Concat(Enumerable.Repeat("---:|", HookActions.Length + 2)));
        foreach ((int n, int d) in Cases(results))
            foreach (LockMethod m in hooked)
            {
                List<RunResult> runs = Select(results, m, n, d).Where(r => r.Status == RunResult.StatusOk).ToList();
                if (runs.Count == 0)
                    continue;
                IEnumerable<string> cells = HookActions.Select(a =>
                    $"{Format(Median(runs.Select(r => Sum(r.HookTimes, a))), "F1")} / {Format(Median(runs.Select(r => Sum(r.ScriptTimes, a))), "F1")}");
                double? otherCount = Median(runs.Select(r => (double?)r.ScriptTimes.Count(t => !HookActions.Contains(t.Action))));
                double? otherTime = Median(runs.Select(r => (double?)r.ScriptTimes.Where(t => !HookActions.Contains(t.Action)).Sum(t => t.Ms)));
                md.AppendLine(($"| {m.Name} | {n:N0} | {d} s | {string.Join(" | ", cells)} | {Format(otherCount, "F0")} ({Format(otherTime, "F1")}) | " +
                                        $"{Format(Median(runs.Select(r => r.PreAttachMs)), "F1")} |"));
            }
        md.AppendLine();
    }

    private static void AppendFailures(StringBuilder md, IReadOnlyList<RunResult> results)
    {
        List<RunResult> notable = results.Where(r => r.Status != RunResult.StatusOk || !IsNone(r.Leftovers) || r.Lost > 0).ToList();
        if (notable.Count == 0)
            return;
        md.AppendLine("## Failed runs, lost connections and leftovers");
        md.AppendLine();
        foreach (RunResult r in notable)
        {
            var line = new StringBuilder(($"- {r.Method}, {r.Connections:N0} connections, copy delay {r.CopyDelaySeconds} s, run {r.Run}: {r.Status}"));
            if (r.Status != RunResult.StatusOk && r.CriuExitCode is { } code)
                line.Append(($" (criu exit {code}{(r.DumpMs is { } d && r.RestoreMs is null ? $" after {d / 1000:F2} s" : "")})"));
            if (r.Error is not null)
                line.Append($": `{Shorten(r.Error, 200)}`");
            if (r.Lost > 0)
                line.Append(($"; lost {r.Lost} of {r.Connections} ({r.Reset} failed, {r.Hung} silent after the recovery bound)"));
            if (!IsNone(r.Leftovers))
                line.Append($"; left behind: {r.Leftovers}");
            md.AppendLine(line.ToString());
        }
        md.AppendLine();
    }

    private static bool IsNone(string? leftovers) => leftovers is null || leftovers.StartsWith("none", StringComparison.Ordinal);

    /// <summary>The (connections, copy delay) cases of the results, in order.</summary>
    /// <summary>Where this run has no iptables measurement, what the fit of earlier runs says, next to this run's hook and skip (medians).</summary>
    private static void AppendIptablesFit(StringBuilder md, IReadOnlyList<RunResult> results, IptablesFit? fit)
    {
        if (fit is null)
            return;
        md.AppendLine("## iptables beyond the measured counts: a fit, not a measurement");
        md.AppendLine();
        md.AppendLine($"{fit.Formula}, least squares over the median downtimes of earlier runs: " +
                      string.Join("; ", fit.Points.Select(p => $"{p.Connections:N0}: {p.DowntimeMs / 1000:F1} s (fit {fit.DowntimeMs(p.Connections) / 1000:F1} s, {p.Source})")) + ".");
        md.AppendLine();
        md.AppendLine("| connections | iptables, fitted | skip (measured) | tcpfreeze (measured) | tcpfreeze-warm (measured) | fitted iptables ÷ tcpfreeze |");
        md.AppendLine("|---:|---:|---:|---:|---:|---:|");
        foreach (int n in results.Select(r => r.Connections).Where(n => n > 0).Distinct().Order())
        {
            if (results.Any(r => r.Connections == n && r.Method == LockMethod.Iptables.Name && r.Status == RunResult.StatusOk))
                continue;
            double? Downtime(string method) => Median(results.Where(r => r.Connections == n && r.Method == method && r.Status == RunResult.StatusOk).Select(r => r.DowntimeMs));
            double fitted = fit.DowntimeMs(n);
            double? hook = Downtime(LockMethod.TcpFreeze.Name);
            md.AppendLine($"| {n:N0} | {fitted / 1000:F0} s | {Format(Downtime(LockMethod.Skip.Name) / 1000, "F2")} s | {Format(hook / 1000, "F2")} s | " +
                          $"{Format(Downtime(LockMethod.TcpFreezeWarm.Name) / 1000, "F2")} s | {(hook is { } h ? $"{fitted / h:F0}x" : "-")} |");
        }
        md.AppendLine();
    }

    /// <summary>CRIU's own dump time per TCP socket, side by side (issue 14, section 4: a freeze made it slower).</summary>
    private static void AppendSocketDump(StringBuilder md, IReadOnlyList<RunResult> results, IReadOnlyList<LockMethod> methods)
    {
        if (!results.Any(r => r.SocketDumpUs is not null))
            return;
        md.AppendLine("## CRIU's dump per TCP socket (median µs)");
        md.AppendLine();
        md.AppendLine("From CRIU's dump.log: first to last `Dumping TCP connection`, divided by the sockets between them (everything CRIU does per " +
                      "descriptor), and of that the TCP part, `Turning repair on` to its `Done` (repair mode on, libsoccr reads the state and both " +
                      "queues, the tcp-stream image is written). Successful and aborted dumps alike; (min-max) over the runs.");
        md.AppendLine();
        md.AppendLine("| method | connections | per socket | TCP part | rest |");
        md.AppendLine("|---|---:|---:|---:|---:|");
        foreach ((int n, int d) in Cases(results))
            foreach (LockMethod m in methods)
            {
                List<RunResult> runs = Select(results, m, n, d).Where(r => r.SocketDumpUs is not null).ToList();
                if (runs.Count == 0)
                    continue;
                md.AppendLine($"| {m.Name} | {n:N0} | {Spread(runs.Select(r => r.SocketDumpUs), "F0")} | {Spread(runs.Select(r => r.SocketRepairUs), "F0")} | " +
                              $"{Spread(runs.Select(r => r.SocketDumpUs - r.SocketRepairUs), "F0")} |");
            }
        md.AppendLine();
    }

    private static IEnumerable<(int Connections, int CopyDelay)> Cases(IReadOnlyList<RunResult> results)
        => results.Select(r => (r.Connections, r.CopyDelaySeconds)).Distinct().Order();

    private static List<RunResult> Select(IReadOnlyList<RunResult> results, LockMethod m, int n, int copyDelay)
        => results.Where(r => r.Method == m.Name && r.Connections == n && r.CopyDelaySeconds == copyDelay).ToList();

    private static double? MedianDowntime(IReadOnlyList<RunResult> results, string method, int n, int copyDelay)
        => Median(results.Where(r => r.Method == method && r.Connections == n && r.CopyDelaySeconds == copyDelay && r.Status == RunResult.StatusOk).Select(r => r.DowntimeMs));

    private static string SurvivedCell(List<RunResult> runs, int n)
    {
        List<int> survived = runs.Where(r => r.Survived is not null).Select(r => r.Survived!.Value).ToList();
        if (survived.Count == 0)
            return "-";
        string median = ($"{Median(survived.Select(s => (double?)s)):F0}/{n:N0}");
        return survived.Min() == survived.Max() ? median : ($"{median} ({survived.Min()}-{survived.Max()})");
    }

    private static string Notes(List<RunResult> runs)
    {
        var notes = new List<string>();
        foreach (IGrouping<string, RunResult> g in runs.Where(r => r.Status != RunResult.StatusOk).GroupBy(r => r.Status))
            notes.Add($"{g.Count()} {g.Key}: `{Shorten(g.First().Error ?? "?", 90)}`");
        if (runs.Any(r => r.Hung > 0))
            notes.Add(($"silent (hung) connections: median {Median(runs.Select(r => (double?)r.Hung)):F0}"));
        if (runs.Any(r => r.Reset > 0))
            notes.Add(($"failed connections: median {Median(runs.Select(r => (double?)r.Reset)):F0}"));
        return string.Join("; ", notes).Replace("|", "\\|", StringComparison.Ordinal);
    }

    private static double? Sum(List<(string Action, double Ms)> times, string action)
        => times.Any(t => t.Action == action) ? times.Where(t => t.Action == action).Sum(t => t.Ms) : null;

    public static double? Median(IEnumerable<double?> values)
    {
        double[] sorted = values.Where(v => v is not null).Select(v => v!.Value).Order().ToArray();
        if (sorted.Length == 0)
            return null;
        int middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }

    /// <summary>"1.23 s (1.10-1.40)": the median, and the range when there are several values.</summary>
    private static string Spread(IEnumerable<double?> values, string format = "F2", bool seconds = false)
    {
        double[] v = values.Where(x => x is not null).Select(x => seconds ? x!.Value / 1000 : x!.Value).ToArray();
        if (v.Length == 0)
            return "-";
        string unit = seconds ? " s" : "";
        string median = Format(Median(v.Select(x => (double?)x)), format) + unit;
        return v.Length == 1 || v.Min() == v.Max() ? median : $"{median} ({Format(v.Min(), format)}-{Format(v.Max(), format)})";
    }

    private static string Ratio(double? a, double? b)
        => a is { } x && b is { } y && y > 0 ? (x / y).ToString(x / y >= 10 ? "F0" : "F2", CultureInfo.InvariantCulture) + "x" : "-";

    private static string Format(double? value, string format) => value?.ToString(format, CultureInfo.InvariantCulture) ?? "-";

    private static string Shorten(string text, int max)
        => (text.Length <= max ? text : text[..max] + "...").Replace('`', '\'').Replace('\n', ' ').Replace("|", "\\|", StringComparison.Ordinal);

}
