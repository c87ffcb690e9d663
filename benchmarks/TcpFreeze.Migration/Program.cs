using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using TcpFreeze.Migration;
using TcpFreeze.Tests.Criu;

// End-to-end CRIU migration benchmark; see BenchOptions.Usage and benchmarks/README.md.
// A client worker: the clients of a large run that this process cannot hold (ClientShards).
if (args.Length > 0 && args[0] == ClientShards.WorkerOption)
    return ClientShards.RunWorker(args);
BenchOptions? options;
try
{
    options = BenchOptions.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"TcpFreeze.Migration: {e.Message}\n\n{BenchOptions.Usage}");
    return 2;
}
if (options is null)
{
    Console.WriteLine(BenchOptions.Usage);
    return 0;
}
if (!Environment.IsPrivilegedProcess)
{
    Console.Error.WriteLine("TcpFreeze.Migration: run as root (it creates network namespaces, runs CRIU and attaches BPF programs).");
    return 1;
}

// Ctrl-C / SIGTERM: finish cleaning up the current run (namespaces, processes, pins), write what was measured, exit.
using var interrupt = new CancellationTokenSource();
int signals = 0;
PosixSignalHandler(PosixSignal.SIGINT);
PosixSignalHandler(PosixSignal.SIGTERM);
PosixSignalHandler(PosixSignal.SIGHUP);

string criu = CriuFixture.FindCriu();
if (options.PaperReportOnly)
    return PaperMode.Run(options, criu, null, interrupt.Token);
string output = options.Output ?? Path.Combine(CriuFixture.RepositoryRoot, "benchmarks", "results");
Directory.CreateDirectory(output);
CriuFixture? hookBuild = null;
if (options.Methods.Any(m => m.Hook))
{
    if (options.Hook is { } given)
    {
        if (!File.Exists(given))
        {
            Console.Error.WriteLine($"TcpFreeze.Migration: --hook {given} does not exist.");
            return 1;
        }
        Environment.SetEnvironmentVariable("TCPFREEZE_HOOK", given);
    }
    else
    {
        Environment.SetEnvironmentVariable("TCPFREEZE_HOOK", null);
        Console.WriteLine("publishing the hook (NativeAOT, about 30 s; --hook PATH skips this)...");
    }
    hookBuild = new CriuFixture();
}

try
{
    if (options.Paper)
        return PaperMode.Run(options, criu, hookBuild?.Hook, interrupt.Token);
    DateTime started = DateTime.UtcNow;
    string stamp = started.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
    var machine = MachineInfo.Read(criu);
    Console.WriteLine($"machine: {machine}");
    Console.WriteLine($"criu: {criu}; hook: {hookBuild?.Hook ?? "(not needed)"}; results: {output}");

    if (options.LazyPages)
        return LazyPagesRun(options, machine, started, stamp);

    string csvPath = Path.Combine(output, $"migration-{stamp}.csv");
    using var csv = new StreamWriter(csvPath) { AutoFlush = true };
    csv.WriteLine(string.Join(',', RunResult.Columns));

    if (options.KeepLogs)
        options = options with { LogDirectory = Path.Combine(output, $"migration-{stamp}-logs") };
    using var scenario = new MigrationScenario(options, criu, hookBuild?.Hook, interrupt.Token);
    var results = new List<RunResult>();
    int total = options.Runs * options.Connections.Count * options.CopyDelays.Count * options.Methods.Count, done = 0;
    var clock = Stopwatch.StartNew();
    try
    {
        for (int run = 1; run <= options.Runs; run++)
            foreach (int n in options.Connections)
                foreach (int delay in options.CopyDelays)
                    foreach (LockMethod method in options.Methods)
                    {
                        interrupt.Token.ThrowIfCancellationRequested();
                        Console.Write($"[{++done}/{total}] {method.Name}, {n} connections, copy delay {delay} s, run {run}: ");
                        RunResult result = scenario.Execute(method, n, delay, run);
                        results.Add(result);
                        csv.WriteLine(result.ToCsv());
                        Console.WriteLine(Summary(result) + $"  [{clock.Elapsed:hh\\:mm\\:ss}]");
                    }
    }
    catch (OperationCanceledException)
    {
        Console.WriteLine("\ninterrupted: the current run was cleaned up; writing what was measured so far.");
    }

    DateTime finished = DateTime.UtcNow;
    IptablesFit? fit = options.IptablesFitSources.Count > 0 ? IptablesFit.FromCsv(options.IptablesFitSources) : null;
    string subtitle = $"{machine.Kernel}, {machine.Cores} cores, {started:yyyy-MM-dd}";
    foreach (string name in new[] { $"migration-{stamp}", "migration-latest" })
    {
        File.WriteAllText(Path.Combine(output, name + ".md"), Report.Markdown(results, options, machine, started, finished, name, fit));
        DowntimePlot.Save(results, options.Methods, Path.Combine(output, name), subtitle, fit);
    }
    bool lagPlot = ResumeLagPlot.Save(results, options.Methods, Path.Combine(output, $"resume-lag-{stamp}"), subtitle);
    if (lagPlot)
        ResumeLagPlot.Save(results, options.Methods, Path.Combine(output, "resume-lag-latest"), subtitle);
    Console.WriteLine($"wrote {csvPath}, migration-{stamp}.md/.png/.svg{(lagPlot ? $", resume-lag-{stamp}.png/.svg" : "")} and the *-latest files in {output}");
    Console.WriteLine();
    Console.WriteLine(Report.ResumeLagTable(results, options.Methods));
    return interrupt.IsCancellationRequested ? 130 : 0;
}
finally
{
    hookBuild?.Dispose();
}

// --lazy-pages: plain and lazy-pages migrations of the memory-heavy server, taking turns in each run.
int LazyPagesRun(BenchOptions options, MachineInfo machine, DateTime started, string stamp)
{
    var bench = new LazyPagesBenchmark(options, criu, hookBuild!.Hook, interrupt.Token);
    var results = new List<LazyPagesBenchmark.Result>();
    string csvPath = Path.Combine(output, $"lazy-pages-{stamp}.csv");
    using (var csv = new StreamWriter(csvPath) { AutoFlush = true })
    using (PipeSizeLimit.AtLeast(PipeSizeLimit.ForCriuLazyPages))
    {
        csv.WriteLine(string.Join(',', LazyPagesBenchmark.Result.Columns));
        var clock = Stopwatch.StartNew();
        try
        {
            for (int run = 1; run <= options.Runs; run++)
                foreach (string mode in new[] { LazyPagesBenchmark.Plain, LazyPagesBenchmark.Lazy })
                {
                    interrupt.Token.ThrowIfCancellationRequested();
                    Console.Write($"[{results.Count + 1}/{options.Runs * 2}] {mode}, {options.MemoryMiB} MiB, {options.Connections.Max()} connections, run {run}: ");
                    LazyPagesBenchmark.Result r = bench.Execute(mode, run);
                    results.Add(r);
                    csv.WriteLine(r.ToCsv());
                    Console.WriteLine($"{r.Status}: dump {MigrationScenario.Seconds(r.DumpMs)}, copy {MigrationScenario.Seconds(r.CopyMs)} ({r.CopiedBytes / 1048576.0:F0} MiB), " +
                                      $"restore {MigrationScenario.Seconds(r.RestoreMs)}, downtime {MigrationScenario.Seconds(r.DowntimeMs)}, " +
                                      $"memory after restore {MigrationScenario.Seconds(r.TransferAfterRestoreMs)}, longest gap {MigrationScenario.Seconds(r.LongestGapMs)}, " +
                                      $"all answered {MigrationScenario.Seconds(r.AllAnsweredMs)}, survived {r.Survived}/{r.Connections}, memory intact {r.MemoryIntact}" +
                                      (r.Error is null ? "" : $"; {r.Error}") + $"  [{clock.Elapsed:hh\\:mm\\:ss}]");
                }
        }
        catch (OperationCanceledException)
        {
            Console.WriteLine("\ninterrupted: the current run was cleaned up; writing what was measured so far.");
        }
    }
    foreach (string name in new[] { $"lazy-pages-{stamp}", "lazy-pages-latest" })
        File.WriteAllText(Path.Combine(output, name + ".md"), LazyPagesBenchmark.Markdown(results, options, machine, started, DateTime.UtcNow));
    Console.WriteLine($"wrote {csvPath}, lazy-pages-{stamp}.md and lazy-pages-latest.md in {output}");
    return interrupt.IsCancellationRequested ? 130 : 0;
}

void PosixSignalHandler(PosixSignal signal) => PosixSignalRegistration.Create(signal, context =>
{
    // The first two signals let the current run clean up; a third one ends the process at once.
    context.Cancel = Interlocked.Increment(ref signals) < 3;
    if (context.Cancel)
        Console.Error.WriteLine($"\n{context.Signal}: stopping after cleaning up the current run (send it twice more to exit at once)");
    interrupt.Cancel();
});

static string Summary(RunResult r)
{
    string text = r.Status == RunResult.StatusOk
        ? $"dump {MigrationScenario.Seconds(r.DumpMs)}, restore {MigrationScenario.Seconds(r.RestoreMs)}, downtime {MigrationScenario.Seconds(r.DowntimeMs)}"
        : $"{r.Status}: {r.Error}";
    if (r.Survived is not null)
        text += $", longest gap {MigrationScenario.Seconds(r.LongestGapMs)}, survived {r.Survived}/{r.Connections}" +
                (r.Lost > 0 ? $" ({r.Reset} failed, {r.Hung} silent)" : "");
    if (r.AbCompleteRequests is not null)
        text += $", ab {r.AbCompleteRequests} requests, {r.AbFailedRequests} failed";
    if (r.ResumeInFlight is { } inFlight)
        text += $", resume lag of {inFlight} in-flight requests p50/p99/max {Ms(r.ResumeLagP50Ms)}/{Ms(r.ResumeLagP99Ms)}/{Ms(r.ResumeLagMaxMs)} ms" +
                $", {r.ResumedBeforeEnd} answered before the restore's end" +
                (r.ResumeUnanswered > 0 ? $" ({r.ResumeUnanswered} connections never answered)" : "");
    if (r.HookTimes.Count > 0)
        text += $", hook {string.Join(' ', r.HookTimes.Select(t => $"{t.Action} {t.Ms:F1} ms"))}";
    if (r.Leftovers is { } left && !left.StartsWith("none", StringComparison.Ordinal))
        text += $"; left behind: {r.Leftovers}";
    return text;
}

static string Ms(double? ms) => ms?.ToString("F0", CultureInfo.InvariantCulture) ?? "-";
