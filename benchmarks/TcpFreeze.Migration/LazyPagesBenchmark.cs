using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using TcpFreeze.Tests.Criu;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Migration;

/// <summary>
/// --lazy-pages: a memory-heavy server migrated across the two namespace "hosts" of
/// <see cref="BridgedHosts"/>, with the TcpFreeze hook, (a) pre-copy the plain way: criu dump, the images
/// copied to hostB over a TCP connection through the bridge, criu restore; (b) post-copy: criu dump
/// --lazy-pages (memory served from hostA's page server), the rest of the images copied the same way,
/// criu lazy-pages + criu restore --lazy-pages on hostB. The server is <see cref="MemoryEchoServer"/>
/// (random bytes, so no zero pages CRIU could skip) with N echo clients in the client namespace.
/// Modes take turns within each run; everything a run creates is removed before the next.
/// </summary>
internal sealed class LazyPagesBenchmark(BenchOptions options, string criu, string hook, CancellationToken cancel)
{
    private static readonly TimeSpan StartBound = TimeSpan.FromSeconds(120);
    private static readonly TimeSpan CriuBound = TimeSpan.FromMinutes(5);

    /// <summary>How many more replies after the restore count as "answering again".</summary>
    private const int ProgressAfterRestore = 2;

    public const string Plain = "plain";
    public const string Lazy = "lazy-pages";

    internal sealed class Result
    {
        public required string Mode { get; init; }
        public required int Run { get; init; }
        public int Connections { get; init; }
        public int MemoryMiB { get; init; }
        public string Status { get; set; } = "error";
        public string? Error { get; set; }
        public double? DumpMs { get; set; }
        public double? CopyMs { get; set; }
        public long CopiedBytes { get; set; }
        public double? RestoreMs { get; set; }
        /// <summary>Dump start to restore end: the server answers nothing in between.</summary>
        public double? DowntimeMs { get; set; }
        /// <summary>Restore end to the source's dump exit: the memory still arriving (lazy pages only).</summary>
        public double? TransferAfterRestoreMs { get; set; }
        /// <summary>The longest time between two replies on any surviving connection, from just before the dump.</summary>
        public double? LongestGapMs { get; set; }
        /// <summary>Restore end until every connection answered twice more.</summary>
        public double? AllAnsweredMs { get; set; }
        public int? Survived { get; set; }
        public int? Failed { get; set; }
        public bool? MemoryIntact { get; set; }

        public static readonly string[] Columns =
        [
            "mode", "run", "connections", "memory_mib", "status", "dump_ms", "copy_ms", "copied_bytes", "restore_ms", "downtime_ms",
            "transfer_after_restore_ms", "longest_gap_ms", "all_answered_ms", "survived", "failed", "memory_intact", "error",
        ];

        public string ToCsv() => string.Join(',', new object?[]
        {
            Mode, Run, Connections, MemoryMiB, Status, DumpMs, CopyMs, CopiedBytes, RestoreMs, DowntimeMs, TransferAfterRestoreMs,
            LongestGapMs, AllAnsweredMs, Survived, Failed, MemoryIntact, Error?.Replace(',', ';').ReplaceLineEndings(" "),
        }.Select(v => v switch
        {
            null => "",
            double d => d.ToString("F1", CultureInfo.InvariantCulture),
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            _ => v.ToString(),
        }));
    }

    public Result Execute(string mode, int run)
    {
        int n = options.Connections.Max();
        var result = new Result { Mode = mode, Run = run, Connections = n, MemoryMiB = options.MemoryMiB };
        string work = Directory.CreateTempSubdirectory("tcpfreeze-lazy-bench-").FullName;
        BridgedHosts? hosts = null;
        PinRoot? pins = null;
        MemoryEchoServer? server = null;
        ClientLoad? load = null;
        LazyPagesMigration? lazy = null;
        try
        {
            hosts = BridgedHosts.Create();
            pins = new PinRoot();
            var client = NetworkNamespace.Named(hosts.Client);
            server = MemoryEchoServer.Start(hosts.HostA, work, new IPEndPoint(hosts.Service, 7000), options.MemoryMiB, StartBound);
            load = ClientLoad.Echo(client, server.Endpoint, n, options.PauseFor(n));
            if (!load.WaitForProgress(_ => 3, StartBound))
                throw new InvalidOperationException($"the clients did not all get 3 replies: {string.Join("; ", load.Failures.Take(3))}");
            var environment = new Dictionary<string, string>
            {
                ["TCPFREEZE_PIN_ROOT"] = pins.Path,
                ["TCPFREEZE_LEASE_SECONDS"] = "120",
                ["TCPFREEZE_HOOK_CONFIG"] = "",
            };
            string moveAddress = hosts.WriteAddressMoveScript(work);

            cancel.ThrowIfCancellationRequested();
            load.ResetLongestGaps();
            long started = Stopwatch.GetTimestamp();
            long restored;
            if (mode == Plain)
            {
                var source = new CriuRunner(criu, hook, hosts.HostA, Path.Combine(work, "a"), pins.Path) { Timeout = CriuBound };
                var destination = new CriuRunner(criu, hook, hosts.HostB, Path.Combine(work, "b"), pins.Path) { Timeout = CriuBound };
                foreach ((string key, string value) in environment)
                    source.Environment[key] = destination.Environment[key] = value;
                destination.ExtraScripts.Add(moveAddress);
                Directory.CreateDirectory(Path.Combine(work, "a"));
                (int dumpCode, TimeSpan dumpTime, string dumpLog) = source.Dump(server.Pid);
                result.DumpMs = dumpTime.TotalMilliseconds;
                if (dumpCode != 0)
                    throw new InvalidOperationException($"criu dump failed: {CriuLog.ErrorLine(dumpLog)}");
                hosts.RemoveServiceFromHostA();
                var copy = Stopwatch.StartNew();
                result.CopiedBytes = ImageCopy.Across(hosts, source.Images, destination.Images);
                result.CopyMs = copy.Elapsed.TotalMilliseconds;
                (int restoreCode, TimeSpan restoreTime, string restoreLog) = destination.Restore();
                restored = Stopwatch.GetTimestamp();
                result.RestoreMs = restoreTime.TotalMilliseconds;
                server.RestoredPid = FindRestored(hosts.HostB, server.Endpoint.Port);
                if (restoreCode != 0)
                    throw new InvalidOperationException($"criu restore failed: {CriuLog.ErrorLine(restoreLog)}");
            }
            else
            {
                lazy = new LazyPagesMigration(criu, hook, hosts, work, pins.Path) { Timeout = CriuBound };
                foreach ((string key, string value) in environment)
                    lazy.Environment[key] = value;
                var dump = Stopwatch.StartNew();
                if (!lazy.StartDump(server.Pid, CriuBound))
                    throw new InvalidOperationException($"the page server did not start: {CriuLog.ErrorLine(lazy.WaitForDump(TimeSpan.Zero).Log)}");
                result.DumpMs = dump.Elapsed.TotalMilliseconds;
                hosts.RemoveServiceFromHostA();
                var copy = Stopwatch.StartNew();
                result.CopiedBytes = ImageCopy.Across(hosts, lazy.SourceImages, lazy.DestinationImages);
                result.CopyMs = copy.Elapsed.TotalMilliseconds;
                var restore = Stopwatch.StartNew();
                if (!lazy.StartLazyPagesDaemon(CriuBound))
                    throw new InvalidOperationException($"criu lazy-pages did not start: {CriuLog.ErrorLine(lazy.WaitForDaemon(TimeSpan.Zero).Log)}");
                (int restoreCode, _, string restoreLog, int? restoredPid) = lazy.Restore(moveAddress);
                restored = Stopwatch.GetTimestamp();
                result.RestoreMs = restore.Elapsed.TotalMilliseconds; // the daemon's start and the restore
                server.RestoredPid = restoredPid;
                if (restoreCode != 0)
                    throw new InvalidOperationException($"criu restore --lazy-pages failed: {CriuLog.ErrorLine(restoreLog)}");
            }
            result.DowntimeMs = Stopwatch.GetElapsedTime(started, restored).TotalMilliseconds;
            DateTime restoredUtc = DateTime.UtcNow - Stopwatch.GetElapsedTime(restored);

            AwaitRecovery(load, load.Snapshot(), restored, result);
            if (lazy is not null)
            {
                (int? dumpCode, string dumpLog) = lazy.WaitForDump(CriuBound);
                if (dumpCode != 0 || !dumpLog.Contains("Lazy pages transfer finished successfully", StringComparison.Ordinal))
                    throw new InvalidOperationException($"the lazy transfer did not finish ({dumpCode}): {CriuLog.ErrorLine(dumpLog)}");
                // The source's dump exits once the last page has been handed over.
                if (lazy.DumpExitTime is { } exited)
                    result.TransferAfterRestoreMs = (exited - restoredUtc).TotalMilliseconds;
                lazy.WaitForDaemon(TimeSpan.FromSeconds(30));
            }
            result.MemoryIntact = server.QueryHash(client, TimeSpan.FromSeconds(60)) == server.Hash;
            result.Status = result.Failed == 0 && result.Survived == n && result.MemoryIntact == true ? "ok" : "lost";
            return result;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            result.Error ??= $"{e.GetType().Name}: {e.Message}";
            return result;
        }
        finally
        {
            Cleanup("stopping CRIU", () => lazy?.Dispose());
            Cleanup("closing the clients", () => load?.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(20)));
            Cleanup("killing the server", () => server?.Dispose());
            if (hosts is not null && pins is not null)
                foreach (string ns in new[] { hosts.HostA, hosts.HostB })
                    Cleanup("detaching TcpFreeze", () => TcpFreezer.Detach(pins.Options(NetworkNamespace.Named(ns))));
            Cleanup("removing the pin root", () => pins?.Dispose());
            Cleanup("deleting the namespaces", () => hosts?.Dispose());
            Cleanup("deleting the work folder", () => Directory.Delete(work, recursive: true));
        }
    }

    /// <summary>
    /// Waits (bounded) until every connection answered <see cref="ProgressAfterRestore"/> more times or failed;
    /// records when the last one did, how many survived, and the longest gap a surviving one saw.
    /// </summary>
    private void AwaitRecovery(ClientLoad load, long[] baseline, long restored, Result result)
    {
        bool Progressed(ClientLoad.Connection c) => Interlocked.Read(ref c.Replies) >= baseline[c.Id] + ProgressAfterRestore;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < options.RecoveryTimeout && !load.Connections.All(c => c.Failure is not null || Progressed(c)))
        {
            cancel.ThrowIfCancellationRequested();
            Thread.Sleep(5);
        }
        result.AllAnsweredMs = load.Connections.All(Progressed) ? Stopwatch.GetElapsedTime(restored).TotalMilliseconds : null;
        List<ClientLoad.Connection> survivors = load.Connections.Where(c => c.Failure is null && Progressed(c)).ToList();
        result.Survived = survivors.Count;
        result.Failed = load.Connections.Count(c => c.Failure is not null);
        if (survivors.Count > 0)
            result.LongestGapMs = survivors.Max(c => Interlocked.Read(ref c.LongestGapTicks)) * 1000.0 / Stopwatch.Frequency;
        if (load.Connections.FirstOrDefault(c => c.Failure is not null)?.Failure is { } first)
            result.Error ??= $"first failure: {first}";
    }

    /// <summary>The restored server (plain restore: no pid file), found as the process listening on the port in hostB.</summary>
    private static int? FindRestored(string ns, int port)
    {
        (int code, string output, _) = Run.Capture("nsenter", [$"--net=/run/netns/{ns}", "ss", "-Htlnp", $"sport = :{port}"], null, TimeSpan.FromSeconds(10));
        int at = output.IndexOf("pid=", StringComparison.Ordinal);
        if (code != 0 || at < 0)
            return null;
        string digits = new(output[(at + 4)..].TakeWhile(char.IsAsciiDigit).ToArray());
        return int.TryParse(digits, CultureInfo.InvariantCulture, out int pid) ? pid : null;
    }

    private static void Cleanup(string step, Action action)
    {
        try
        {
            action();
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"  cleanup: {step} failed: {e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>The Markdown report: medians (min-max) per mode, then every run.</summary>
    public static string Markdown(IReadOnlyList<Result> results, BenchOptions options, MachineInfo machine, DateTime started, DateTime finished)
    {
        var md = new StringBuilder();
        md.AppendLine($"# CRIU migration of a memory-heavy server: pre-copy (plain) and post-copy (lazy pages), {started:yyyy-MM-dd HH:mm} UTC");
        md.AppendLine();
        md.AppendLine($"- Date: {started:yyyy-MM-dd HH:mm:ss} to {finished:HH:mm:ss} UTC, {results.Count} runs. Machine: {machine}.");
        md.AppendLine($"- Command: `flock -o /tmp/tcpfreeze-bench.lock dotnet run -c Release --project benchmarks/TcpFreeze.Migration -- {options.CommandLine}`");
        md.AppendLine($"- Scenario: a python echo server holding {options.MemoryMiB} MiB of random bytes it has touched, as PID 1 of a PID namespace of its own, " +
                      $"in namespace hostA of two namespace \"hosts\" bridged to a client namespace; {results.FirstOrDefault()?.Connections} echo connections from the " +
                      "client namespace, each sending a numbered line, checking the echo and pausing " +
                      $"{options.PauseFor(results.FirstOrDefault()?.Connections ?? 0).TotalMilliseconds:F0} ms. The TcpFreeze hook freezes the connections in both modes " +
                      "(`--network-lock skip`); the service address moves from hostA to hostB after the dump (added at pre-restore, after the hook's freeze). " +
                      "Plain: `criu dump`, the images copied to hostB over one TCP connection through the bridge, `criu restore -d`. Lazy pages: " +
                      "`criu dump --lazy-pages --address hostA --port 27000` (returns control once its page server listens: CRIU's status-ready), the images " +
                      "without the lazy memory copied the same way, `criu lazy-pages --page-server` and `criu restore --lazy-pages -d` on hostB. " +
                      "fs.pipe-max-size is raised to 4 MiB for the runs (CRIU's lazy page server needs it, see PipeSizeLimit).");
        md.AppendLine("- Downtime: dump start to restore end (the server answers nothing in between). Memory after restore: restore end to the source dump's exit, " +
                      "when the last page has been handed over (lazy pages only). Longest client gap: the longest time between two replies on any " +
                      "surviving connection, from just before the dump. All answered: restore end until every connection answered twice more. Memory intact: " +
                      "the restored server's SHA-256 of its memory equals the one it computed at its start.");
        md.AppendLine("- Figures: median (min-max) of the runs; modes take turns within each run.");
        md.AppendLine();
        md.AppendLine("| mode | runs ok | dump | image copy (size) | restore | downtime | memory after restore | longest client gap | all answered after restore | survived | memory intact |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (string mode in new[] { Plain, Lazy })
        {
            List<Result> runs = results.Where(r => r.Mode == mode).ToList();
            if (runs.Count == 0)
                continue;
            List<Result> ok = runs.Where(r => r.Status == "ok").ToList();
            string size = runs.Max(r => r.CopiedBytes) is var b and > 0 ? $" ({b / 1048576.0:F0} MiB)" : "";
            md.AppendLine($"| {mode} | {ok.Count}/{runs.Count} | {Spread(ok.Select(r => r.DumpMs))} | {Spread(ok.Select(r => r.CopyMs))}{size} | " +
                          $"{Spread(ok.Select(r => r.RestoreMs))} | {Spread(ok.Select(r => r.DowntimeMs))} | {Spread(ok.Select(r => r.TransferAfterRestoreMs))} | " +
                          $"{Spread(ok.Select(r => r.LongestGapMs))} | {Spread(ok.Select(r => r.AllAnsweredMs))} | " +
                          $"{string.Join(", ", runs.Select(r => $"{r.Survived?.ToString(CultureInfo.InvariantCulture) ?? "-"}/{r.Connections}"))} | " +
                          $"{string.Join(", ", runs.Select(r => r.MemoryIntact switch { true => "yes", false => "NO", null => "-" }))} |");
        }
        md.AppendLine();
        md.AppendLine("Every run:");
        md.AppendLine();
        md.AppendLine("| mode | run | status | dump | copy | restore | downtime | memory after restore | longest gap | all answered | survived | error |");
        md.AppendLine("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        foreach (Result r in results)
            md.AppendLine($"| {r.Mode} | {r.Run} | {r.Status} | {S(r.DumpMs)} | {S(r.CopyMs)} | {S(r.RestoreMs)} | {S(r.DowntimeMs)} | {S(r.TransferAfterRestoreMs)} | " +
                          $"{S(r.LongestGapMs)} | {S(r.AllAnsweredMs)} | {r.Survived}/{r.Connections} | {r.Error?.ReplaceLineEndings(" ").Replace('|', '/') ?? ""} |");
        return md.ToString();
    }

    private static string S(double? ms) => MigrationScenario.Seconds(ms);

    private static string Spread(IEnumerable<double?> values)
    {
        double[] v = values.Where(x => x is not null).Select(x => x!.Value).Order().ToArray();
        if (v.Length == 0)
            return "-";
        string median = S(v[v.Length / 2]);
        return v.Length == 1 ? median : $"{median} ({(v[0] / 1000).ToString("F2", CultureInfo.InvariantCulture)}-{(v[^1] / 1000).ToString("F2", CultureInfo.InvariantCulture)})";
    }

    /// <summary>
    /// The image copy of both modes: every file of a folder sent from hostA to hostB over one TCP connection
    /// through the bridge (hostA's address to hostB's), as a migration sends them between hosts.
    /// </summary>
    private static class ImageCopy
    {
        public static long Across(BridgedHosts hosts, string from, string to)
        {
            Directory.CreateDirectory(to);
            var receiverEnd = new IPEndPoint(IPAddress.Parse($"198.18.{hosts.Subnet}.12"), 27100);
            using Socket listener = NetworkNamespace.Named(hosts.HostB).OpenSocket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(receiverEnd);
            listener.Listen(1);
            Task<long> receiving = Task.Run(() => Receive(listener, to));
            long sent = 0;
            using (Socket sender = NetworkNamespace.Named(hosts.HostA).OpenSocket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
            {
                sender.Connect(receiverEnd);
                using var stream = new NetworkStream(sender, ownsSocket: false);
                using var writer = new BinaryWriter(stream);
                foreach (string file in Directory.GetFiles(from).Where(f => !f.EndsWith(".log", StringComparison.Ordinal)))
                {
                    using FileStream input = File.OpenRead(file);
                    writer.Write(Path.GetFileName(file));
                    writer.Write(input.Length);
                    input.CopyTo(stream, 1 << 20);
                    sent += input.Length;
                }
                writer.Write("");
                writer.Flush();
                sender.Shutdown(SocketShutdown.Send);
            }
            long received = receiving.Wait(TimeSpan.FromMinutes(5)) ? receiving.Result : throw new TimeoutException("the image copy did not finish");
            return received == sent ? sent : throw new IOException($"sent {sent} bytes of images, received {received}");
        }

        private static long Receive(Socket listener, string to)
        {
            using Socket connection = listener.Accept();
            using var stream = new NetworkStream(connection, ownsSocket: false);
            using var reader = new BinaryReader(stream);
            long total = 0;
            var buffer = new byte[1 << 20];
            for (string name = reader.ReadString(); name.Length > 0; name = reader.ReadString())
            {
                long length = reader.ReadInt64();
                using FileStream output = File.Create(Path.Combine(to, Path.GetFileName(name)));
                for (long left = length; left > 0;)
                {
                    int n = stream.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
                    if (n == 0)
                        throw new EndOfStreamException($"the image copy ended inside {name}");
                    output.Write(buffer, 0, n);
                    left -= n;
                }
                total += length;
            }
            return total;
        }
    }
}
