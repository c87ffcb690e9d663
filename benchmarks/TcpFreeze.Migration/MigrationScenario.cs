using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using TcpFreeze.Tests.Criu;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Migration;

/// <summary>
/// One measured migration: a fresh test network, nginx in namespace B, N keep-alive clients
/// in namespace A all making progress, criu dump (--tcp-established), the old PID gone,
/// criu restore -d, then every connection answering again (bounded). Everything it creates
/// (namespaces, processes, pins, CRIU's netfilter leftovers) is removed before it returns,
/// also when it fails or is cancelled.
/// </summary>
internal sealed class MigrationScenario(BenchOptions options, string criu, string? hook, CancellationToken cancel) : IDisposable
{
    private readonly BenchAgent _agent = new();

    /// <summary>Stops the agent, if a method started it.</summary>
    public void Dispose() => _agent.Dispose();

    private static readonly TimeSpan CriuTimeout = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan StartBound = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan PidBound = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan AbWarmUp = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan AbAfterRestore = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan StaleLockObservation = TimeSpan.FromSeconds(5);

    /// <summary>How many more replies after the restore count as "answering again" (one full request and reply at least).</summary>
    private const int ProgressAfterRestore = 2;

    public RunResult Execute(LockMethod method, int connections, int copyDelaySeconds, int run)
    {
        bool ab = options.ApacheBench && connections > 0;
        var result = new RunResult
        {
            Method = method.Name, Connections = connections, Run = run, CopyDelaySeconds = copyDelaySeconds,
            Load = (ab ? $"ab -k -c {connections}" : $"http keep-alive, pause {options.PauseFor(connections).TotalMilliseconds:F0} ms")
                   + (options.PeerDropsIcmp ? ", clients drop ICMP unreachable" : ""),
        };
        string work = Directory.CreateTempSubdirectory("tcpfreeze-migration-").FullName;
        TestNetwork? network = null;
        PinRoot? pins = null;
        DumpableServer? server = null;
        ClientLoad? load = null;
        ClientShards? shards = null;
        ApacheBench? bench = null;
        try
        {
            network = TestNetwork.Create();
            if (options.PeerDropsIcmp)
                TestNetwork.DropIcmpUnreachable(network.NameA);
            pins = new PinRoot();
            FreezerOptions freezer = pins.Options(network.B);
            var endpoint = new IPEndPoint(network.AddressB(AddressFamily.InterNetwork), 8080);
            if (method.PreAttached)
            {
                var attach = Stopwatch.StartNew();
                using (TcpFreezer.Attach(freezer))
                    result.PreAttachMs = attach.Elapsed.TotalMilliseconds;
            }

            server = NginxServer.Start(network.NameB, work, endpoint, connections);
            if (!server.IsRunning)
                throw new InvalidOperationException($"nginx did not start: {NginxServer.ErrorLog(work)}");
            if (ab)
            {
                bench = ApacheBench.Start(network.NameA, endpoint, connections, CriuTimeout * 2 + TimeSpan.FromMinutes(1));
                Sleep(AbWarmUp + TimeSpan.FromMilliseconds(connections));
                if (bench.HasExited)
                    throw new InvalidOperationException($"ab ended before the dump: {bench.Stop().Message}");
            }
            else
            {
                if (connections > ClientShards.PerProcess)
                    WidenClientPorts(network);
                shards = ClientShards.Http(network.NameA, endpoint, connections, options.PauseFor(connections));
                load = shards.Local;
                // Three replies each: three pauses and the staggered start.
                TimeSpan bound = StartBound + options.PauseFor(connections) * 4;
                if (!shards.WaitForProgress(3, bound))
                    throw new InvalidOperationException($"the clients did not all get 3 replies within {bound.TotalSeconds:F0} s: " +
                                                        string.Join("; ", load.Failures.Take(3)));
            }

            var runner = new CriuRunner(criu, hook ?? "", network.NameB, work, pins.Path)
            {
                NetworkLockWithoutHook = method.CriuNetworkLock,
                Timeout = CriuTimeout,
            };
            if (method.Hook)
            {
                runner.Environment["TCPFREEZE_HOOK_CONFIG"] = WriteHookConfig(work, method);
                // The agent only for the method that measures it; the others never find one (even one installed here).
                runner.Environment["TCPFREEZE_AGENT_SOCKET"] = method.Agent ? _agent.StartIn(network.NameB, hook!) : "";
            }
            if (method.LegacyIptables)
                runner.Environment["PATH"] = LegacyIptables.PathFor(work);
            // The freeze must outlast dump + copy + restore: the runner's lease (60 s) plus the copy delay.
            runner.Environment["TCPFREEZE_LEASE_SECONDS"] = (60 + copyDelaySeconds).ToString(CultureInfo.InvariantCulture);
            // glibc's fatal messages (nftables mode's "bit out of range 0 - FD_SETSIZE") go to stderr, where the runner reads them, not to a tty.
            runner.Environment["LIBC_FATAL_STDERR_"] = "1";

            cancel.ThrowIfCancellationRequested();
            shards?.ResetLongestGaps();
            long started = Stopwatch.GetTimestamp();
            (int ExitCode, TimeSpan Elapsed, string Log) dump = runner.Dump(server.Pid, method.Hook);
            long dumped = Stopwatch.GetTimestamp();
            load?.RecordExchangesFrom(dumped);
            result.DumpMs = dump.Elapsed.TotalMilliseconds;
            if (!Succeeded(result, dump, RunResult.StatusAborted))
            {
                result.Leftovers = Leftovers(network, method, freezer, load, observeStaleLock: true);
                if (shards is not null)
                    AwaitRecovery(shards, result);
                return result;
            }

            var pidClock = Stopwatch.StartNew();
            if (!server.WaitUntilGone(PidBound))
                throw new TimeoutException($"the dumped PID {server.Pid} did not go away within {PidBound.TotalSeconds} s");
            result.WaitForPidMs = pidClock.Elapsed.TotalMilliseconds;
            // The image copy: the restore starts copyDelaySeconds after the dump's end (or once the PID is gone, if later).
            TimeSpan copyLeft = TimeSpan.FromSeconds(copyDelaySeconds) - Stopwatch.GetElapsedTime(dumped);
            if (copyLeft > TimeSpan.Zero)
                Sleep(copyLeft);
            result.CopyGapMs = Stopwatch.GetElapsedTime(dumped).TotalMilliseconds;

            (int ExitCode, TimeSpan Elapsed, string Log) restore = runner.Restore(method.Hook);
            long ended = Stopwatch.GetTimestamp();
            result.RestoreMs = restore.Elapsed.TotalMilliseconds;
            if (Succeeded(result, restore, RunResult.StatusRestoreFailed))
            {
                result.Status = RunResult.StatusOk;
                result.DowntimeMs = Stopwatch.GetElapsedTime(started, ended).TotalMilliseconds;
            }

            if (load is not null && shards is not null)
            {
                AwaitRecovery(shards, result);
                if (result.Status == RunResult.StatusOk)
                    MeasureResumeLag(load, dumped, ended, result);
            }
            if (bench is not null)
            {
                Sleep(AbAfterRestore);
                ApacheBench.Result abResult = bench.Stop();
                result.AbCompleteRequests = abResult.Complete;
                result.AbFailedRequests = abResult.Failed;
                result.AbSeconds = abResult.Seconds;
                result.AbFailureBreakdown = abResult.FailureBreakdown;
                if (abResult.Complete is null)
                    result.Error = (result.Error is null ? "" : result.Error + "; ") + $"ab exited {abResult.ExitCode}: {abResult.Message}";
            }
            result.Leftovers = Leftovers(network, method, freezer, load, observeStaleLock: false);
            return result;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            result.Status = RunResult.StatusError;
            result.Error = $"{e.GetType().Name}: {e.Message}";
            return result;
        }
        finally
        {
            // Each step on its own, so that one failing does not leave the later ones undone.
            Cleanup("keeping the CRIU logs", () => KeepLogs(work, method, connections, copyDelaySeconds, run));
            Cleanup("stopping ab", () => bench?.Dispose());
            Cleanup("closing the clients", () => shards?.Dispose());
            Cleanup("killing nginx", () => server?.Dispose());
            if (method.Agent)
                Cleanup("stopping the agent", () => _agent.Dispose());
            if (network is not null && pins is not null && (method.Hook || method.PreAttached))
                Cleanup("detaching TcpFreeze", () => TcpFreezer.Detach(pins.Options(network.B)));
            Cleanup("removing the pin root", () => pins?.Dispose());
            Cleanup("deleting the namespaces", () => network?.Dispose());
            Cleanup("deleting the work folder", () => Directory.Delete(work, recursive: true));
        }
    }

    private void KeepLogs(string work, LockMethod method, int connections, int copyDelaySeconds, int run)
    {
        if (options.LogDirectory is null)
            return;
        Directory.CreateDirectory(options.LogDirectory);
        foreach (string log in new[] { "dump.log", "restore.log" })
            if (Path.Combine(work, "images", log) is var path && File.Exists(path))
                File.Copy(path, Path.Combine(options.LogDirectory, $"{method.Name}-{connections}-copy{copyDelaySeconds}s-run{run}-{log}"), overwrite: true);
    }

    internal static string WriteHookConfig(string work, LockMethod method)
    {
        string path = Path.Combine(work, "criu-hook.conf");
        File.WriteAllText(path, $"keep-attached = {(method.PreAttached ? "true" : "false")}\nkick = {(method.Kick ? "true" : "false")}\n");
        return path;
    }

    /// <summary>
    /// The resume lag: for each request in flight across the migration (sent before the restore ended, answered after
    /// it), the time from the restore's end to its answer. Each connection has one request at a time, so its first answer
    /// after the end is the in-flight one if it was sent before the end. Called after <see cref="AwaitRecovery"/>, so every
    /// such request has been answered unless its connection was lost. Also counts the connections whose first answer
    /// after the dump's end came before the restore's end (held by the migration, resumed before CRIU exited).
    /// </summary>
    private static void MeasureResumeLag(ClientLoad load, long dumped, long ended, RunResult result)
    {
        var lags = new List<double>();
        var held = new List<double>();
        int unanswered = 0, beforeEnd = 0;
        foreach (ClientLoad.Connection c in load.Connections)
        {
            if (c.FirstAnsweredAfter(dumped) is { } first && first.Sent < ended)
            {
                // Held by the migration: its first answer after the dump's end, for a request sent before the restore's end.
                held.Add(Math.Max(0, Stopwatch.GetElapsedTime(ended, first.Replied).TotalMilliseconds));
                if (first.Replied < ended)
                    beforeEnd++;
            }
            if (c.FirstAnsweredAfter(ended) is not { } exchange)
                unanswered++;
            else if (exchange.Sent < ended)
                lags.Add(Stopwatch.GetElapsedTime(ended, exchange.Replied).TotalMilliseconds);
        }
        result.ResumeInFlight = lags.Count;
        result.ResumedBeforeEnd = beforeEnd;
        result.ResumeHeld = held.Count;
        if (held.Count > 0)
        {
            held.Sort();
            result.ResumeHeldP50Ms = NearestRank(held, 0.50);
            result.ResumeHeldP99Ms = NearestRank(held, 0.99);
            result.ResumeHeldMaxMs = held[^1];
        }
        result.ResumeUnanswered = unanswered;
        if (lags.Count == 0)
            return;
        lags.Sort();
        result.ResumeLagP50Ms = NearestRank(lags, 0.50);
        result.ResumeLagP99Ms = NearestRank(lags, 0.99);
        result.ResumeLagMaxMs = lags[^1];
    }

    private static double NearestRank(List<double> sorted, double quantile)
        => sorted[Math.Clamp((int)Math.Ceiling(quantile * sorted.Count) - 1, 0, sorted.Count - 1)];

    /// <summary>Takes the hook's times from a CRIU run's log; when CRIU failed, sets <paramref name="failedStatus"/> and CRIU's error line.</summary>
    private bool Succeeded(RunResult result, (int ExitCode, TimeSpan Elapsed, string Log) criuRun, string failedStatus)
    {
        result.CriuExitCode = criuRun.ExitCode;
        result.HookTimes.AddRange(CriuLog.HookTimes(criuRun.Log));
        if (CriuLog.SocketDump(criuRun.Log) is { } sockets)
            (result.SocketDumpUs, result.SocketRepairUs) = (sockets.PerSocketUs, sockets.RepairUs);
        if (hook is not null)
            result.ScriptTimes.AddRange(CriuLog.ScriptTimes(criuRun.Log, hook));
        if (criuRun.ExitCode == 0)
            return true;
        result.Status = failedStatus;
        result.Error = CriuLog.ErrorLine(criuRun.Log);
        return false;
    }

    /// <summary>
    /// Waits (bounded) until every connection either answered again or failed, then counts
    /// them and takes the longest gap between replies that a surviving connection saw.
    /// </summary>
    private void AwaitRecovery(ClientShards shards, RunResult result)
    {
        ClientShards.ConnectionStatus[] baseline = shards.Status();
        // Every connection's state in every client process; polled less often when it comes from workers.
        TimeSpan poll = TimeSpan.FromMilliseconds(shards.HasWorkers ? 250 : 20);
        bool Progressed(ClientShards.ConnectionStatus now, int i) => now.Replies >= baseline[i].Replies + ProgressAfterRestore;
        var clock = Stopwatch.StartNew();
        ClientShards.ConnectionStatus[] status = baseline;
        while (clock.Elapsed < options.RecoveryTimeout)
        {
            status = shards.Status();
            if (status.Select((s, i) => s.Failed || Progressed(s, i)).All(done => done))
                break;
            Sleep(poll);
        }
        int[] survivors = [.. Enumerable.Range(0, status.Length).Where(i => !status[i].Failed && Progressed(status[i], i))];
        result.Survived = survivors.Length;
        result.Reset = status.Count(s => s.Failed);
        result.Hung = status.Length - result.Survived - result.Reset;
        if (survivors.Length > 0)
            result.LongestGapMs = TimeSpan.FromTicks(survivors.Max(i => status[i].LongestGapTicks) * TimeSpan.TicksPerSecond / Stopwatch.Frequency).TotalMilliseconds;
        if (result.Reset > 0 && shards.Local.Connections.FirstOrDefault(c => c.Failure is not null)?.Failure is { } first)
            result.Error ??= $"first failure: {first}";
    }

    /// <summary>
    /// More than one client address's worth of connections to one server port (about 28,000 with Linux's default
    /// ephemeral range) need a wider range: namespace A's own sysctl.
    /// </summary>
    private static void WidenClientPorts(TestNetwork network)
        => Run.Checked("ip", "netns", "exec", network.NameA, "sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65000");

    /// <summary>
    /// Reports and removes what the run left in namespace B: CRIU's nft table or iptables
    /// rules, and TcpFreeze's programs (expected only with keep-attached). After an aborted
    /// dump, first watches for a few seconds whether the clients get through the stale lock.
    /// </summary>
    private string Leftovers(TestNetwork network, LockMethod method, FreezerOptions freezer, ClientLoad? load, bool observeStaleLock)
    {
        var parts = new List<string>();
        NetfilterLeftovers netfilter = NetfilterLeftovers.Inspect(network.NameB, method.LegacyIptables);
        if (!netfilter.IsEmpty)
        {
            string observed = "";
            if (observeStaleLock && load is not null)
            {
                long[] before = load.Snapshot();
                Sleep(StaleLockObservation);
                int answered = load.Connections.Count(c => c.Failure is null && Interlocked.Read(ref c.Replies) > before[c.Id]);
                observed = $", {answered} of {load.Connections.Count} connections answered during {StaleLockObservation.TotalSeconds:F0} s with it in place";
            }
            string? failure = netfilter.Remove(network.NameB);
            parts.Add($"{netfilter}{observed}; " + (failure is null ? "removed" : $"removal failed: {failure}"));
        }
        if ((method.Hook || method.PreAttached) && TcpFreezer.IsAttached(freezer))
        {
            using TcpFreezer attached = TcpFreezer.Open(freezer);
            int frozen = attached.ListConnections().Count;
            if (method.PreAttached && frozen == 0 && parts.Count == 0)
                return "none (TcpFreeze stays attached, as keep-attached asks)";
            parts.Add($"TcpFreeze attached{(method.PreAttached ? " (keep-attached)" : "")}, {frozen} connections frozen");
        }
        return parts.Count == 0 ? "none" : string.Join("; ", parts);
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

    private void Sleep(TimeSpan time)
    {
        if (cancel.WaitHandle.WaitOne(time))
            cancel.ThrowIfCancellationRequested();
    }

    public static string Seconds(double? ms) => ms is { } v ? (v / 1000).ToString("F2", CultureInfo.InvariantCulture) + " s" : "-";
}
