using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using TcpFreeze.Tests.Criu;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Migration;

/// <summary>
/// The paper's experiment, one run: nginx configured like the paper's (Ubuntu's defaults on 2 vCPU: 2 workers x 768
/// worker_connections = 1,536 simultaneous connections, a static page, an access log) in namespace B; ApacheBench
/// without keep-alive (<c>ab -r -s 900 -c N -n 500000</c>, a new connection per request) from namespace A, started 3 s
/// (+1 ms per client) before the checkpoint; <c>criu dump</c> (the tasks are killed), wait until their PIDs are free,
/// <c>criu restore -d</c> from the images (with --skip-in-flight), each CRIU command under <c>perf record</c> (<see cref="PerfBreakdown"/>);
/// ab stopped 5 s after the restore. Concurrency 0 runs no ab at all. Everything it creates is removed before it
/// returns, also when it fails.
/// </summary>
internal sealed class PaperExperiment(BenchOptions options, string criu, string? hook, CancellationToken cancel)
{
    private static readonly TimeSpan CriuTimeout = TimeSpan.FromMinutes(15);
    private static readonly TimeSpan PidBound = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan AbWarmUp = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan AbAfterRestore = TimeSpan.FromSeconds(5);

    /// <summary>Ubuntu 20.04's nginx.conf on a 2-vCPU VM: worker_processes auto (2) x worker_connections 768.</summary>
    public const int Workers = 2, WorkerConnections = 768;

    public PaperRun Execute(LockMethod method, int concurrency, int run)
    {
        var result = new PaperRun { Method = method.Name, Concurrency = concurrency, Run = run };
        string work = Directory.CreateTempSubdirectory("tcpfreeze-paper-").FullName;
        TestNetwork? network = null;
        PinRoot? pins = null;
        DumpableServer? server = null;
        ApacheBench? bench = null;
        try
        {
            network = TestNetwork.Create();
            pins = new PinRoot();
            FreezerOptions freezer = pins.Options(network.B);
            var endpoint = new IPEndPoint(network.AddressB(AddressFamily.InterNetwork), 80);
            // ab opens ~10,000 connections a second: give the client every port, and let it reuse its TIME-WAIT ones.
            Run.Checked("nsenter", $"--net=/run/netns/{network.NameA}", "sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65535", "net.ipv4.tcp_tw_reuse=1");
            if (method.PreAttached)
                using (TcpFreezer.Attach(freezer))
                {
                }

            server = StartNginx(network.NameB, work, endpoint);
            if (concurrency > 0)
            {
                bench = ApacheBench.Start(network.NameA, endpoint, concurrency, CriuTimeout * 2 + TimeSpan.FromMinutes(1),
                    keepAlive: false, requests: options.Requests, path: "/");
                Sleep(AbWarmUp + TimeSpan.FromMilliseconds(concurrency));
                if (bench.HasExited)
                    throw new InvalidOperationException($"ab ended before the checkpoint: {bench.Stop().Message}");
            }

            var runner = new CriuRunner(criu, hook ?? "", network.NameB, work, pins.Path)
            {
                NetworkLockWithoutHook = method.CriuNetworkLock,
                Timeout = CriuTimeout,
            };
            if (method.Hook)
                runner.Environment["TCPFREEZE_HOOK_CONFIG"] = MigrationScenario.WriteHookConfig(work, method);
            if (method.LegacyIptables)
                runner.Environment["PATH"] = LegacyIptables.PathFor(work);
            runner.Environment["TCPFREEZE_LEASE_SECONDS"] = "600";
            // Under ab some connections are still in the listen queue, which CRIU refuses to dump unless told to leave them
            // (--skip-in-flight; they are reset). A configuration file reaches dump and restore without changing the shared runner.
            string criuConfig = Path.Combine(work, "criu.conf");
            File.WriteAllText(criuConfig, "skip-in-flight\n");
            runner.Environment["CRIU_CONFIG_FILE"] = criuConfig;

            List<int> tree = DescendantsAndSelf(server.Pid);
            string dumpPerf = Path.Combine(work, "dump.perf"), restorePerf = Path.Combine(work, "restore.perf");
            runner.Wrapper.AddRange(PerfBreakdown.Wrapper(dumpPerf));
            cancel.ThrowIfCancellationRequested();
            (int ExitCode, TimeSpan Elapsed, string Log) dump = runner.Dump(server.Pid, method.Hook);
            result.CheckpointWallMs = dump.Elapsed.TotalMilliseconds;
            result.CheckpointCriuMs = CriuLog.SpanMs(dump.Log);
            result.DumpedConnections = CriuLog.Count(dump.Log, "Dumping TCP connection");
            string hookTimes = Pairs(CriuLog.HookTimes(dump.Log));
            if (dump.ExitCode != 0)
            {
                result.Status = RunResult.StatusAborted;
                result.Error = CriuLog.ErrorLine(dump.Log);
                return Finish(result, bench, dumpPerf, null, network, method, freezer);
            }

            var pidClock = Stopwatch.StartNew();
            while (pidClock.Elapsed < PidBound && tree.Any(pid => Directory.Exists($"/proc/{pid}")))
                Thread.Sleep(5);
            if (tree.Any(pid => Directory.Exists($"/proc/{pid}")))
                throw new TimeoutException($"the dumped PIDs {string.Join(' ', tree)} were not all gone within {PidBound.TotalSeconds} s");
            result.WaitForPidMs = pidClock.Elapsed.TotalMilliseconds;

            runner.Wrapper.Clear();
            runner.Wrapper.AddRange(PerfBreakdown.Wrapper(restorePerf));
            (int ExitCode, TimeSpan Elapsed, string Log) restore = runner.Restore(method.Hook);
            result.RestoreWallMs = restore.Elapsed.TotalMilliseconds;
            result.RestoreCriuMs = CriuLog.SpanMs(restore.Log);
            result.RestoredConnections = CriuLog.Count(restore.Log, "Restoring TCP connection id");
            result.HookTimes = string.Join(';', new[] { hookTimes, Pairs(CriuLog.HookTimes(restore.Log)) }.Where(s => s.Length > 0));
            if (restore.ExitCode == 0)
                result.Status = RunResult.StatusOk;
            else
            {
                result.Status = RunResult.StatusRestoreFailed;
                result.Error = CriuLog.ErrorLine(restore.Log);
            }
            if (bench is not null)
                Sleep(AbAfterRestore);
            return Finish(result, bench, dumpPerf, restorePerf, network, method, freezer);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            result.Status = RunResult.StatusError;
            result.Error = $"{e.GetType().Name}: {e.Message}";
            return result;
        }
        finally
        {
            Cleanup("keeping the CRIU logs", () => KeepLogs(work, result));
            Cleanup("stopping ab", () => bench?.Dispose());
            Cleanup("killing nginx", () => server?.Dispose());
            if (network is not null && pins is not null && method.Hook)
                Cleanup("detaching TcpFreeze", () => TcpFreezer.Detach(pins.Options(network.B)));
            Cleanup("removing the pin root", () => pins?.Dispose());
            Cleanup("deleting the namespaces", () => network?.Dispose());
            Cleanup("deleting the work folder", () => Directory.Delete(work, recursive: true));
        }
    }

    /// <summary>CRIU's logs of a failed run (of every run with --keep-logs) into the output folder's logs/.</summary>
    private void KeepLogs(string work, PaperRun result)
    {
        if (result.Status == RunResult.StatusOk && !options.KeepLogs)
            return;
        string folder = Path.Combine(options.Output ?? ".", "logs");
        Directory.CreateDirectory(folder);
        foreach (string log in new[] { "dump.log", "restore.log" })
            if (Path.Combine(work, "images", log) is var path && File.Exists(path))
                File.Copy(path, Path.Combine(folder, $"{result.Method}-{result.Concurrency}-run{result.Run}-{result.StartedUtc:HHmmss}-{log}"), overwrite: true);
    }

    /// <summary>After the measured part: ab's results, the perf breakdowns, what the lock left behind.</summary>
    private static PaperRun Finish(PaperRun result, ApacheBench? bench, string dumpPerf, string? restorePerf, TestNetwork network, LockMethod method,
        FreezerOptions freezer)
    {
        if (bench is not null)
        {
            ApacheBench.Result ab = bench.Stop();
            result.AbComplete = ab.Complete;
            result.AbFailed = ab.Failed;
            result.AbConnectFailures = ab.ConnectFailures;
            result.AbReceiveFailures = ab.ReceiveFailures;
            result.AbLengthFailures = ab.LengthFailures;
            result.AbExceptions = ab.ExceptionFailures;
            result.AbNon2xx = ab.Non2xx;
            result.AbLongestMs = ab.LongestMs;
            result.AbResets = ab.Resets;
            result.AbAborted = ab.Aborted;
            result.AbSeconds = ab.Seconds;
            if (ab.Complete is null || ab.Aborted)
                result.AbMessage = $"ab exited {ab.ExitCode}: {ab.Message}";
        }
        var errors = new List<string>();
        foreach ((string? file, Dictionary<string, double> into, bool checkpoint) in new[] { (dumpPerf, result.CheckpointCpu, true), (restorePerf, result.RestoreCpu, false) })
        {
            if (file is null)
                continue;
            if (PerfBreakdown.Read(file, out string? error) is { } times)
            {
                foreach (string c in PerfBreakdown.Categories)
                    into[c] = times[c];
                if (checkpoint)
                    result.CheckpointOther = times.OtherNames;
                else
                    result.RestoreOther = times.OtherNames;
            }
            else
                errors.Add(error!);
        }
        result.PerfError = errors.Count > 0 ? string.Join("; ", errors) : null;

        var left = new List<string>();
        NetfilterLeftovers netfilter = NetfilterLeftovers.Inspect(network.NameB, method.LegacyIptables);
        if (!netfilter.IsEmpty)
            left.Add($"{netfilter}; " + (netfilter.Remove(network.NameB) is { } failure ? $"removal failed: {failure}" : "removed"));
        if (method.Hook && !method.PreAttached && TcpFreezer.IsAttached(freezer))
            left.Add("TcpFreeze still attached");
        result.Leftovers = left.Count == 0 ? "none" : string.Join("; ", left);
        return result;
    }

    /// <summary>nginx with the paper's limits; a static page about the size of nginx's default one (612 bytes).</summary>
    private static DumpableServer StartNginx(string ns, string work, IPEndPoint endpoint)
    {
        string html = Path.Combine(work, "html");
        Directory.CreateDirectory(html);
        var page = new StringBuilder("<!DOCTYPE html>\n<html><head><title>TcpFreeze paper benchmark</title></head>\n<body>\n<h1>It works</h1>\n<p>");
        while (page.Length < 590)
            page.Append("nginx answered this request. ");
        File.WriteAllText(Path.Combine(html, "index.html"), page.Append("</p>\n</body></html>\n").ToString());
        string config = Path.Combine(work, "nginx.conf"), errorLog = Path.Combine(work, "nginx-error.log");
        File.WriteAllText(config, $$"""
            daemon off;
            master_process on;
            worker_processes {{Workers}};
            user root;
            pid {{work}}/nginx.pid;
            error_log {{errorLog}} warn;
            events { worker_connections {{WorkerConnections}}; }
            http {
                sendfile on;
                tcp_nopush on;
                keepalive_timeout 65;
                types { text/html html; }
                default_type application/octet-stream;
                access_log {{work}}/access.log;
                client_body_temp_path {{work}}/body;
                proxy_temp_path {{work}}/proxy;
                fastcgi_temp_path {{work}}/fastcgi;
                uwsgi_temp_path {{work}}/uwsgi;
                scgi_temp_path {{work}}/scgi;
                server {
                    listen {{endpoint}};
                    root {{html}};
                    index index.html;
                }
            }
            """);
        DumpableServer nginx = DumpableServer.Start(ns, work, "nginx", "-c", config, "-p", work, "-e", errorLog);
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(10) && DescendantsAndSelf(nginx.Pid).Count < 1 + Workers)
            Thread.Sleep(20);
        if (DescendantsAndSelf(nginx.Pid).Count < 1 + Workers)
        {
            string log = File.Exists(errorLog) ? File.ReadAllText(errorLog) : "";
            nginx.Dispose();
            throw new InvalidOperationException($"nginx did not start its {Workers} workers: {log}");
        }
        return nginx;
    }

    /// <summary>The process and its children (nginx's master and workers), from /proc/PID/task/PID/children.</summary>
    private static List<int> DescendantsAndSelf(int pid)
    {
        var all = new List<int> { pid };
        for (int i = 0; i < all.Count && i < 64; i++)
        {
            string children = $"/proc/{all[i]}/task/{all[i]}/children";
            try
            {
                all.AddRange(File.ReadAllText(children).Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse));
            }
            catch (IOException)
            {
            }
        }
        return all;
    }

    private static string Pairs(List<(string Action, double Ms)> pairs)
        => string.Join(';', pairs.Select(p => $"{p.Action}={p.Ms.ToString("F1", CultureInfo.InvariantCulture)}"));

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

    private void Sleep(TimeSpan time)
    {
        if (cancel.WaitHandle.WaitOne(time))
            cancel.ThrowIfCancellationRequested();
    }
}
