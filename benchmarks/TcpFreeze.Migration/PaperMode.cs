using System.Diagnostics;
using System.Globalization;
using TcpFreeze.Tests.Criu;

namespace TcpFreeze.Migration;

/// <summary>--paper: runs <see cref="PaperExperiment"/> for every run, concurrency and method (methods take turns), then rebuilds the report.</summary>
internal static class PaperMode
{
    public static int Run(BenchOptions options, string criu, string? hook, CancellationToken cancel)
    {
        string output = options.Output ?? Path.Combine(CriuFixture.RepositoryRoot, "benchmarks", "results", "paper");
        Directory.CreateDirectory(output);
        var machine = MachineInfo.Read(criu);
        if (options.PaperReportOnly)
        {
            PaperReport.Write(output, machine);
            Console.WriteLine($"wrote {Path.Combine(output, "paper-report.md")} and figure2.png/.svg");
            return 0;
        }
        Console.WriteLine($"machine: {machine}");
        Console.WriteLine($"criu: {criu}; hook: {hook ?? "(not needed)"}; results: {output}");
        string stamp = DateTime.UtcNow.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
        string csvPath = Path.Combine(output, $"paper-{stamp}.csv");
        options = options with { Output = output };
        var experiment = new PaperExperiment(options, criu, hook, cancel);
        int total = options.Runs * options.Connections.Count * options.Methods.Count, done = 0;
        var clock = Stopwatch.StartNew();
        using (var csv = new StreamWriter(csvPath) { AutoFlush = true })
        {
            csv.WriteLine(string.Join(',', PaperRun.Columns));
            try
            {
                for (int run = 1; run <= options.Runs; run++)
                    foreach (int n in options.Connections)
                        foreach (LockMethod method in options.Methods)
                        {
                            cancel.ThrowIfCancellationRequested();
                            Console.Write($"[{++done}/{total}] {method.Name}, concurrency {n}, run {run}: ");
                            PaperRun result = experiment.Execute(method, n, run);
                            csv.WriteLine(result.ToCsv());
                            Console.WriteLine(Summary(result) + $"  [{clock.Elapsed:hh\\:mm\\:ss}]");
                        }
            }
            catch (OperationCanceledException)
            {
                Console.WriteLine("\ninterrupted: the current run was cleaned up; writing the report from what was measured.");
            }
        }
        PaperReport.Write(output, machine);
        Console.WriteLine($"wrote {csvPath}, paper-report.md and figure2.png/.svg in {output}");
        return cancel.IsCancellationRequested ? 130 : 0;
    }

    private static string Summary(PaperRun r)
    {
        string Cpu(Dictionary<string, double> times)
            => string.Join(' ', PerfBreakdown.Categories.Where(times.ContainsKey).Select(c => $"{c} {times[c].ToString("F0", CultureInfo.InvariantCulture)}"));
        string text = r.Status == RunResult.StatusOk
            ? $"checkpoint {MigrationScenario.Seconds(r.CheckpointCriuMs)} ({r.DumpedConnections} TCP), restore {MigrationScenario.Seconds(r.RestoreCriuMs)}; " +
              $"CPU ms checkpoint [{Cpu(r.CheckpointCpu)}] restore [{Cpu(r.RestoreCpu)}]"
            : $"{r.Status}: {r.Error}";
        if (r.AbComplete is not null || r.AbAborted is not null)
            text += $"; ab {r.AbComplete} requests, {r.AbFailed} failed (connect {r.AbConnectFailures}, receive {r.AbReceiveFailures}, " +
                    $"length {r.AbLengthFailures}, exceptions {r.AbExceptions}), longest {r.AbLongestMs} ms{(r.AbAborted == true ? ", ABORTED" : "")}";
        if (r.AbMessage is not null)
            text += $" ({r.AbMessage})";
        if (r.PerfError is not null)
            text += $"; perf: {r.PerfError}";
        if (r.Leftovers is { } left && left != "none")
            text += $"; left behind: {left}";
        return text;
    }
}
