using System.Globalization;
using System.Text;

namespace TcpFreeze.Migration;

/// <summary>The Markdown report: one row per method and connection count, ratios, hook steps, failures. Formats with the invariant culture (the project sets InvariantGlobalization).</summary>
internal static class Report
{
    private static readonly string[] HookActions = ["pre-dump", "post-dump", "pre-restore", "pre-resume"];

    public static string Markdown(IReadOnlyList<RunResult> results, BenchOptions options, MachineInfo machine, DateTime started, DateTime finished, string plotBaseName)
    {
        var md = new StringBuilder();
        IReadOnlyList<LockMethod> methods = options.Methods;
        int[] counts = results.Select(r => r.Connections).Distinct().Order().ToArray();
        bool ab = options.ApacheBench;

        md.AppendLine(($"# CRIU migration: network-lock methods side by side, {started:yyyy-MM-dd HH:mm} UTC"));
        md.AppendLine();
        md.AppendLine(($"- Date: {started:yyyy-MM-dd HH:mm:ss} to {finished:HH:mm:ss} UTC ({(finished - started).TotalMinutes:F0} min), {results.Count} runs."));
        md.AppendLine($"- Machine: {machine}.");
        md.AppendLine($"- Command: `sudo dotnet run -c Release --project benchmarks/TcpFreeze.Migration --{(options.CommandLine.Length > 0 ? " " + options.CommandLine : "")}`");
        md.AppendLine("- Scenario, per method, connection count N and run, in a fresh pair of test namespaces: Debian's nginx (master + 1 worker, " +
                      "keep-alive) in namespace B; " + (ab
                          ? "`ab -k -r -s 900 -c N` from namespace A, started 3 s (+1 ms per connection) before the dump and stopped " +
                            "with SIGINT 5 s after the restore (ab time: its whole run); "
                          : "N HTTP/1.1 keep-alive connections from namespace A, each sending a request, checking the reply and pausing " +
                            "(250-500 ms: N / 3,000 req/s), all answered 3 times before the dump; ") +
                      "`criu dump --tcp-established -v4`, wait until the old PID is gone, `criu restore -d`; then up to " +
                      ($"{options.RecoveryTimeout.TotalSeconds:F0} s for every connection to answer twice more."));
        md.AppendLine("- Downtime: dump start to restore end (includes waiting for the PID). Longest client gap: the longest time between two " +
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
            ? "| method | connections | runs ok | dump | restore | downtime | ab time | ab requests | ab failed | notes |"
            : "| method | connections | runs ok | dump | restore | downtime | longest client gap | survived | notes |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|" + (ab ? "---:|" : "") + "---|");
        foreach (int n in counts)
            foreach (LockMethod m in methods)
            {
                List<RunResult> runs = Select(results, m, n);
                if (runs.Count == 0)
                    continue;
                List<RunResult> ok = runs.Where(r => r.Status == RunResult.StatusOk).ToList();
                string clients = ab
                    ? $"{Spread(runs.Select(r => r.AbSeconds * 1000), seconds: true)} | {Spread(runs.Select(r => (double?)r.AbCompleteRequests), "F0")} | " +
                      $"{Spread(runs.Select(r => (double?)r.AbFailedRequests), "F0")}"
                    : $"{Spread(ok.Select(r => r.LongestGapMs), seconds: true)} | {SurvivedCell(runs, n)}";
                md.AppendLine(($"| {m.Name} | {n:N0} | {ok.Count}/{runs.Count} | {Spread(ok.Select(r => r.DumpMs), seconds: true)} | " +
                                        $"{Spread(ok.Select(r => r.RestoreMs), seconds: true)} | {Spread(ok.Select(r => r.DowntimeMs), seconds: true)} | " +
                                        $"{clients} | {Notes(runs)} |"));
            }
        md.AppendLine();

        AppendRatios(md, results, counts);
        AppendHookSteps(md, results, methods, counts);
        AppendFailures(md, results);

        md.AppendLine("## Plot");
        md.AppendLine();
        md.AppendLine($"![downtime against connections]({plotBaseName}.png)");
        md.AppendLine();
        md.AppendLine($"Vector version: [{plotBaseName}.svg]({plotBaseName}.svg). Raw rows: the CSV of the same timestamp.");
        return md.ToString();
    }

    private static void AppendRatios(StringBuilder md, IReadOnlyList<RunResult> results, int[] counts)
    {
        string[] hooks = [LockMethod.TcpFreeze.Name, LockMethod.TcpFreezeWarm.Name];
        if (!hooks.Any(h => results.Any(r => r.Method == h)))
            return;
        md.AppendLine("## TcpFreeze against the floor (no lock) and the default (iptables), same run");
        md.AppendLine();
        md.AppendLine("Median downtimes. `÷ skip`: how much longer than no lock at all (which loses connections); " +
                      "`iptables ÷`: how many times longer CRIU's default lock takes.");
        md.AppendLine();
        md.AppendLine("| connections | skip | iptables | tcpfreeze | tcpfreeze ÷ skip | iptables ÷ tcpfreeze | tcpfreeze-warm | warm ÷ skip | iptables ÷ warm |");
        md.AppendLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (int n in counts)
        {
            double? skip = MedianDowntime(results, LockMethod.Skip.Name, n), iptables = MedianDowntime(results, LockMethod.Iptables.Name, n);
            double? cold = MedianDowntime(results, LockMethod.TcpFreeze.Name, n), warm = MedianDowntime(results, LockMethod.TcpFreezeWarm.Name, n);
            md.AppendLine(($"| {n:N0} | {MigrationScenario.Seconds(skip)} | {MigrationScenario.Seconds(iptables)} | " +
                                    $"{MigrationScenario.Seconds(cold)} | {Ratio(cold, skip)} | {Ratio(iptables, cold)} | " +
                                    $"{MigrationScenario.Seconds(warm)} | {Ratio(warm, skip)} | {Ratio(iptables, warm)} |"));
        }
        md.AppendLine();
    }

    private static void AppendHookSteps(StringBuilder md, IReadOnlyList<RunResult> results, IReadOnlyList<LockMethod> methods, int[] counts)
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
        md.AppendLine("| method | connections | " + string.Join(" | ", HookActions) + " | other runs | pre-attach |");
        md.AppendLine("|---|---:|" + string.Concat(Enumerable.Repeat("---:|", HookActions.Length + 2)));
        foreach (int n in counts)
            foreach (LockMethod m in hooked)
            {
                List<RunResult> runs = Select(results, m, n).Where(r => r.Status == RunResult.StatusOk).ToList();
                if (runs.Count == 0)
                    continue;
                IEnumerable<string> cells = HookActions.Select(a =>
                    $"{Format(Median(runs.Select(r => Sum(r.HookTimes, a))), "F1")} / {Format(Median(runs.Select(r => Sum(r.ScriptTimes, a))), "F1")}");
                double? otherCount = Median(runs.Select(r => (double?)r.ScriptTimes.Count(t => !HookActions.Contains(t.Action))));
                double? otherTime = Median(runs.Select(r => (double?)r.ScriptTimes.Where(t => !HookActions.Contains(t.Action)).Sum(t => t.Ms)));
                md.AppendLine(($"| {m.Name} | {n:N0} | {string.Join(" | ", cells)} | {Format(otherCount, "F0")} ({Format(otherTime, "F1")}) | " +
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
            var line = new StringBuilder(($"- {r.Method}, {r.Connections:N0} connections, run {r.Run}: {r.Status}"));
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

    private static List<RunResult> Select(IReadOnlyList<RunResult> results, LockMethod m, int n)
        => results.Where(r => r.Method == m.Name && r.Connections == n).ToList();

    private static double? MedianDowntime(IReadOnlyList<RunResult> results, string method, int n)
        => Median(results.Where(r => r.Method == method && r.Connections == n && r.Status == RunResult.StatusOk).Select(r => r.DowntimeMs));

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
