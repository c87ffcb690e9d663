using System.Globalization;
using System.Text;

namespace TcpFreeze.Migration;

/// <summary>
/// The report of the paper's experiment: Table 2's shape per method with the paper's figures beside ours, the share of
/// iptables + sh, what ab saw, and Figure 2 (total time against concurrency). Built from every paper-*.csv in a folder.
/// </summary>
internal static class PaperReport
{
    /// <summary>The paper's Table 2 (ms): checkpoint criu, iptables, sh, other; restore criu, iptables, sh, other (N/A as 0).</summary>
    private static readonly Dictionary<int, double[]> PaperTable2 = new()
    {
        [0] = [121.63, 13.51, 0, 6.76, 34.02, 0, 0, 1.95],
        [500] = [1173.07, 1260.40, 533.51, 0, 189.60, 1162.94, 385.31, 59.49],
        [1000] = [3806.45, 3325.54, 844.81, 0, 249.94, 2738.57, 1154.48, 15.80],
        [1500] = [5938.31, 5297.09, 974.66, 0, 847.63, 4846.71, 1050.25, 0],
    };

    public static void Write(string folder, MachineInfo machine)
    {
        List<PaperRun> runs = Directory.EnumerateFiles(folder, "paper-*.csv").Order().SelectMany(PaperRun.ReadCsv).ToList();
        string[] methods = LockMethod.All.Select(m => m.Name).Where(n => runs.Any(r => r.Method == n)).ToArray();
        File.WriteAllText(Path.Combine(folder, "paper-report.md"), Markdown(runs, methods, machine));
        string subtitle = $"{machine.Kernel}, {machine.Cores} cores; ours: mean of the successful runs";
        var series = methods.Select(m => new DowntimePlot.Series(m, runs.Where(r => r.Method == m && r.Status == RunResult.StatusOk && r.TotalMs is not null)
                .GroupBy(r => r.Concurrency).OrderBy(g => g.Key)
                .Select(g => ((double)g.Key, g.Average(r => r.TotalMs!.Value) / 1000)).ToArray()))
            .Append(new DowntimePlot.Series("the paper (Table 2, CRIU iptables)", PaperTable2.OrderBy(p => p.Key)
                .Select(p => ((double)p.Key, p.Value.Sum() / 1000)).ToArray(), Dashed: true))
            .ToList();
        DowntimePlot.Save(series, Path.Combine(folder, "figure2"), subtitle,
            "Figure 2 again: checkpoint + restore of nginx under ab (no keep-alive)", "checkpoint + restore (s, log scale)", "ab concurrency");
    }

    public static string Markdown(IReadOnlyList<PaperRun> runs, IReadOnlyList<string> methods, MachineInfo machine)
    {
        var md = new StringBuilder();
        md.AppendLine("# The paper's experiment again: nginx under ApacheBench, checkpoint and restore, time per process");
        md.AppendLine();
        if (runs.Count > 0)
            md.AppendLine($"- Runs: {runs.Count}, {runs.Min(r => r.StartedUtc):yyyy-MM-dd HH:mm} to {runs.Max(r => r.StartedUtc):HH:mm} UTC, from " +
                          $"{runs.Select(r => r.StartedUtc.Date).Distinct().Count()} day(s); machine: {machine}.");
        md.AppendLine("- Command (one concurrency level per invocation, each under `flock /tmp/tcpfreeze-bench.lock`): " +
                      "`dotnet run -c Release --project benchmarks/TcpFreeze.Migration -- --paper --connections N --runs R [--methods ...]`.");
        md.AppendLine($"- Setup: nginx (Debian's 1.22) with {PaperExperiment.Workers} workers x {PaperExperiment.WorkerConnections} worker_connections " +
                      "(Ubuntu's default on 2 vCPU: 1,536 simultaneous connections, as the paper), a 612-byte static page, an access log; " +
                      "`ab -r -s 900 -c N -n 500000` without `-k` (a new connection per request, as the paper) from a second network namespace, " +
                      "started 3 s (+1 ms per client) before the checkpoint and stopped with SIGINT 5 s after the restore (not all 500,000 requests: " +
                      "the checkpoint is taken while ab runs, as the paper; waiting for the whole count would cost minutes per run). " +
                      "`criu dump --tcp-established` (the tasks are killed), wait until their PIDs are free, `criu restore -d`.");
        md.AppendLine("- Times: `checkpoint` and `restore` are CRIU's own span (its log's last timestamp, from its start); Figure 2's total is their sum. " +
                      "The per-process columns are CPU time from `perf record -e task-clock -c 200000` around each CRIU command: every 200 µs of CPU " +
                      "that CRIU or a process it started (sh, iptables, the hook; at restore also the forked tasks, which run as `criu` until they " +
                      "take nginx's name) used is one sample with that process's name. `perf` is what the paper used to attribute the time; it counts " +
                      "CPU, so where CRIU waits for a child the child's CPU is counted, not the wait. `other` is every other name (nsenter, the restored " +
                      "nginx's last moments, perf's own child before exec). The paper's N/A (under 0.01 % of the total) is shown as 0.");
        md.AppendLine("- Each figure: the mean of the successful runs (the paper averaged 10 runs), with min-max of the totals; runs per point in the tables.");
        md.AppendLine();

        md.AppendLine("## Figure 2: checkpoint + restore against concurrency");
        md.AppendLine();
        md.AppendLine("| method | concurrency | runs ok | connections dumped | checkpoint | restore | total (min-max) | the paper's total | ours ÷ paper | CPU of the trees |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (string m in methods)
            foreach (int n in Levels(runs, m))
            {
                List<PaperRun> all = Select(runs, m, n), ok = all.Where(r => r.Status == RunResult.StatusOk).ToList();
                double? paper = PaperTable2.TryGetValue(n, out double[]? p) ? p.Sum() : null;
                double? total = Mean(ok.Select(r => r.TotalMs));
                md.AppendLine($"| {m} | {n:N0} | {ok.Count}/{all.Count} | {F(Mean(ok.Select(r => (double?)r.DumpedConnections)), "F0")} | " +
                              $"{Ms(Mean(ok.Select(r => r.CheckpointCriuMs)))} | {Ms(Mean(ok.Select(r => r.RestoreCriuMs)))} | " +
                              $"{Ms(total)} ({Ms(Min(ok.Select(r => r.TotalMs)))}-{Ms(Max(ok.Select(r => r.TotalMs)))}) | {Ms(paper)} | " +
                              $"{(total is { } t && paper is { } q && q > 0 ? (t / q).ToString("F2", CultureInfo.InvariantCulture) + "x" : "-")} | " +
                              $"{Ms(Mean(ok.Select(r => (double?)(r.CheckpointCpu.Values.Sum() + r.RestoreCpu.Values.Sum()))))} |");
            }
        md.AppendLine();
        md.AppendLine("![Figure 2 again](figure2.png)");
        md.AppendLine();

        md.AppendLine("## Table 2: time per process (ms), ours beside the paper's");
        md.AppendLine();
        foreach (string m in methods)
        {
            md.AppendLine($"### {m}");
            md.AppendLine();
            md.AppendLine("| conn. | | checkpoint criu | iptables | sh | hook | other | restore criu | iptables | sh | hook | other |");
            md.AppendLine("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            foreach (int n in Levels(runs, m))
            {
                List<PaperRun> ok = Select(runs, m, n).Where(r => r.Status == RunResult.StatusOk && r.CheckpointCpu.Count > 0).ToList();
                IEnumerable<string> ours = PerfBreakdown.Categories.Select(c => F(Mean(ok.Select(r => (double?)r.CheckpointCpu.GetValueOrDefault(c))), "N1"))
                    .Concat(PerfBreakdown.Categories.Select(c => F(Mean(ok.Select(r => (double?)r.RestoreCpu.GetValueOrDefault(c))), "N1")));
                md.AppendLine($"| {n:N0} | ours ({ok.Count} runs) | {string.Join(" | ", ours)} |");
                if (PaperTable2.TryGetValue(n, out double[]? p))
                    md.AppendLine($"| | the paper | {P(p[0])} | {P(p[1])} | {P(p[2])} | - | {P(p[3])} | {P(p[4])} | {P(p[5])} | {P(p[6])} | - | {P(p[7])} |");
            }
            md.AppendLine();
        }

        md.AppendLine("## The paper's ratio: iptables + sh as a share of the time");
        md.AppendLine();
        md.AppendLine("Share of the per-process total (CPU) spent in `iptables` and `sh`; for the hook methods the hook's share instead. " +
                      "The paper: 52-60 % of the checkpoint and 85-92 % of the restore.");
        md.AppendLine();
        md.AppendLine("| method | concurrency | checkpoint: iptables + sh | the paper | restore: iptables + sh | the paper | checkpoint: hook | restore: hook |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (string m in methods)
            foreach (int n in Levels(runs, m))
            {
                List<PaperRun> ok = Select(runs, m, n).Where(r => r.Status == RunResult.StatusOk && r.CheckpointCpu.Count > 0).ToList();
                string Share(Func<PaperRun, Dictionary<string, double>> side, params string[] categories)
                    => ok.Count == 0 ? "-" : Pct(ok.Sum(r => categories.Sum(c => side(r).GetValueOrDefault(c))) / ok.Sum(r => side(r).Values.Sum()));
                string paperCheckpoint = PaperTable2.TryGetValue(n, out double[]? p) ? Pct((p[1] + p[2]) / p[..4].Sum()) : "-";
                string paperRestore = p is not null ? Pct((p[5] + p[6]) / p[4..].Sum()) : "-";
                md.AppendLine($"| {m} | {n:N0} | {Share(r => r.CheckpointCpu, PerfBreakdown.Iptables, PerfBreakdown.Shell)} | {paperCheckpoint} | " +
                              $"{Share(r => r.RestoreCpu, PerfBreakdown.Iptables, PerfBreakdown.Shell)} | {paperRestore} | " +
                              $"{Share(r => r.CheckpointCpu, PerfBreakdown.Hook)} | {Share(r => r.RestoreCpu, PerfBreakdown.Hook)} |");
            }
        md.AppendLine();

        md.AppendLine("## What ApacheBench saw");
        md.AppendLine();
        md.AppendLine("Per run, from ab's own summary after SIGINT; each cell the mean (min-max) over the runs. `failed`: ab's failed requests, " +
                      "split into its `Connect` (a connect that failed, e.g. refused while no listener exists), `Receive` (a read error: with `-r` " +
                      "a reset connection is counted here and ab goes on), `Length` and `Exceptions`; `longest`: ab's longest completed request " +
                      "(connect to last byte); `aborted`: runs where ab gave up (\"Test aborted after 10 failures\", connect errors).");
        md.AppendLine();
        md.AppendLine("| method | concurrency | runs | requests | failed | connect | receive | length | exceptions | non-2xx | longest request | aborted |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (string m in methods)
            foreach (int n in Levels(runs, m).Where(n => n > 0))
            {
                List<PaperRun> all = Select(runs, m, n).Where(r => r.AbComplete is not null || r.AbAborted is not null).ToList();
                md.AppendLine($"| {m} | {n:N0} | {all.Count} | {Spread(all.Select(r => (double?)r.AbComplete))} | {Spread(all.Select(r => (double?)r.AbFailed))} | " +
                              $"{Spread(all.Select(r => (double?)r.AbConnectFailures))} | {Spread(all.Select(r => (double?)r.AbReceiveFailures))} | " +
                              $"{Spread(all.Select(r => (double?)r.AbLengthFailures))} | {Spread(all.Select(r => (double?)r.AbExceptions))} | " +
                              $"{Spread(all.Select(r => (double?)r.AbNon2xx))} | {Spread(all.Select(r => (double?)r.AbLongestMs), " ms")} | " +
                              $"{all.Count(r => r.AbAborted == true)}/{all.Count} |");
            }
        md.AppendLine();

        List<PaperRun> notable = runs.Where(r => r.Status != RunResult.StatusOk || r.PerfError is not null || (r.Leftovers is { } l && l != "none")
                                                 || r.AbMessage is not null).ToList();
        if (notable.Count > 0)
        {
            md.AppendLine("## Failed runs, leftovers, messages");
            md.AppendLine();
            foreach (PaperRun r in notable)
                md.AppendLine($"- {r.Method}, {r.Concurrency:N0}, run {r.Run} ({r.StartedUtc:HH:mm} UTC): {r.Status}" +
                              (r.Error is null ? "" : $": `{Shorten(r.Error)}`") + (r.AbMessage is null ? "" : $"; {Shorten(r.AbMessage)}") +
                              (r.PerfError is null ? "" : $"; perf: {Shorten(r.PerfError)}") +
                              (r.Leftovers is { } left && left != "none" ? $"; left behind: {Shorten(left)}" : ""));
            md.AppendLine();
        }
        md.AppendLine("Raw rows: the `paper-*.csv` files next to this report (`checkpoint_other` / `restore_other`: the names counted as other, with ms).");
        return md.ToString();
    }

    private static IEnumerable<int> Levels(IReadOnlyList<PaperRun> runs, string method)
        => runs.Where(r => r.Method == method).Select(r => r.Concurrency).Distinct().Order();

    private static List<PaperRun> Select(IReadOnlyList<PaperRun> runs, string method, int n)
        => runs.Where(r => r.Method == method && r.Concurrency == n).ToList();

    private static double? Mean(IEnumerable<double?> values)
        => values.Where(v => v is not null).Select(v => v!.Value).ToArray() is { Length: > 0 } a ? a.Average() : null;

    private static double? Min(IEnumerable<double?> values) => values.Where(v => v is not null).Min();

    private static double? Max(IEnumerable<double?> values) => values.Where(v => v is not null).Max();

    private static string Spread(IEnumerable<double?> values, string unit = "")
    {
        double[] v = values.Where(x => x is not null).Select(x => x!.Value).ToArray();
        if (v.Length == 0)
            return "-";
        string mean = v.Average().ToString("N0", CultureInfo.InvariantCulture) + unit;
        return v.Min() == v.Max() ? mean : $"{mean} ({v.Min().ToString("N0", CultureInfo.InvariantCulture)}-{v.Max().ToString("N0", CultureInfo.InvariantCulture)})";
    }

    private static string Ms(double? ms) => ms is { } v ? (v >= 10_000 ? (v / 1000).ToString("F1", CultureInfo.InvariantCulture) + " s" : v.ToString("N0", CultureInfo.InvariantCulture) + " ms") : "-";

    private static string F(double? value, string format) => value?.ToString(format, CultureInfo.InvariantCulture) ?? "-";

    private static string P(double paper) => paper == 0 ? "N/A" : paper.ToString("N1", CultureInfo.InvariantCulture);

    private static string Pct(double share) => double.IsFinite(share) ? (share * 100).ToString("F0", CultureInfo.InvariantCulture) + " %" : "-";

    private static string Shorten(string text)
        => (text.Length <= 200 ? text : text[..200] + "...").Replace('`', '\'').Replace("|", "\\|", StringComparison.Ordinal);
}
