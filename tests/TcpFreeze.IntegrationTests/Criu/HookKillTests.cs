using System.Diagnostics;
using System.Text.RegularExpressions;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.Criu;

/// <summary>
/// The hook SIGKILLed at each CRIU step it works at, at once or part-way: CRIU aborts,
/// connections flow again by the end of the lease at the latest, and the next run with
/// a healthy hook migrates every connection and leaves nothing behind.
/// </summary>
public sealed class HookKillTests(CriuFixture criu) : CriuTest("tcpfreeze-criu-kill-")
{
    private const int Connections = 40;
    private const int LeaseSeconds = 8;

    /// <summary>
    /// An action script that runs the real hook and, at one step, SIGKILLs it after a delay,
    /// then fails the step as a killed hook does (if the hook finished first, it was killed
    /// just after its work: also a fault CRIU must survive).
    /// </summary>
    private string KillingHook(string step, string delay)
    {
        string path = Path.Combine(_work, $"kill-at-{step}.sh");
        File.WriteAllText(path, $"""
            #!/bin/sh
            [ "$CRTOOLS_SCRIPT_ACTION" = "{step}" ] || exec "{criu.Hook}"
            "{criu.Hook}" &
            hook=$!
            sleep {delay}
            kill -KILL $hook 2>/dev/null
            wait $hook
            echo "test: SIGKILLed the hook at {step} after {delay} s" >&2
            exit 137
            """);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    [RootTheory]
    [InlineData("pre-dump", "0")]
    [InlineData("pre-dump", "0.012")]
    [InlineData("post-dump", "0")]
    [InlineData("post-dump", "0.012")]
    [InlineData("pre-restore", "0")]
    [InlineData("pre-restore", "0.012")]
    [InlineData("pre-resume", "0")]
    [InlineData("pre-resume", "0.012")]
    public async Task The_hook_killed_at_a_step_leaves_no_connection_frozen_past_the_lease_and_the_next_run_recovers(string step, string delay)
    {
        await using var busy = BusyEchoServer.Start(criu, _work, Connections);
        var killing = new CriuRunner(criu.Criu, KillingHook(step, delay), busy.Network.NameB, _work, busy.Pins.Path);
        killing.Environment["TCPFREEZE_LEASE_SECONDS"] = LeaseSeconds.ToString();
        busy.Runner.Environment["TCPFREEZE_LEASE_SECONDS"] = LeaseSeconds.ToString();
        bool dumpStep = step is "pre-dump" or "post-dump";

        if (dumpStep)
        {
            var clock = Stopwatch.StartNew();
            (int code, _, string log) = killing.Dump(busy.Server.Pid);
            Assert.NotEqual(0, code);
            Assert.Contains($"test: SIGKILLed the hook at {step}", log);
            Assert.True(busy.Server.IsRunning, "the failed dump left no running server");
            // The dump watcher thaws as soon as CRIU ends if the hook got to start it; else the lease ends the freeze.
            busy.AssertEveryConnectionFlows(3, TimeSpan.FromSeconds(LeaseSeconds + 20), $"after the hook was killed at {step}");
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(LeaseSeconds + 20));
        }
        else
        {
            (int dumpCode, _, string dumpLog) = busy.Runner.Dump(busy.Server.Pid);
            Assert.True(dumpCode == 0, CriuRunner.Tail(dumpLog));
            Assert.True(busy.Server.WaitUntilGone(TimeSpan.FromSeconds(10)));
            var clock = Stopwatch.StartNew();
            (int code, _, string log) = killing.Restore();
            Assert.Contains($"test: SIGKILLed the hook at {step}", log);
            if (step == "pre-restore")
            {
                Assert.NotEqual(0, code);
                Assert.True(busy.Server.WaitUntilGone(TimeSpan.FromSeconds(10)), "CRIU left the restored server running after the hook failed");
            }
            else
            {
                // CRIU resumes the tasks even when a pre-resume script fails; the hook's
                // post-resume step thaws what the killed pre-resume left frozen.
                Assert.True(code == 0, CriuRunner.Tail(log));
                Assert.True(busy.Server.IsRunning);
                busy.AssertEveryConnectionFlows(3, TimeSpan.FromSeconds(LeaseSeconds + 20), "after the hook was killed at pre-resume");
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(LeaseSeconds), $"the connections flowed only after {clock.Elapsed}: the lease, not post-resume, ended the freeze");
            }
        }

        // The next run, with a healthy hook, must work from whatever the killed one left.
        if (step != "pre-restore")
        {
            (int code, _, string log) = busy.Runner.Dump(busy.Server.Pid);
            Assert.True(code == 0, CriuRunner.Tail(log));
            Assert.True(busy.Server.WaitUntilGone(TimeSpan.FromSeconds(10)));
        }
        (int restoreCode, _, string restoreLog) = busy.Runner.Restore();
        Assert.True(restoreCode == 0, CriuRunner.Tail(restoreLog));
        Assert.True(busy.Server.IsRunning);
        busy.AssertEveryConnectionFlows(3, TimeSpan.FromSeconds(30), "after the recovering migration");
        KernelState.AssertNothingLeft(busy.Network.B, busy.ServerSide);
    }

    /// <summary>
    /// Issue 19, item 13: CRIU itself SIGKILLed at pre-resume, while the hook thaws or just after it has: CRIU's
    /// post-resume, which detaches when idle, never runs. The restored tasks run on once their tracer is gone and
    /// every connection flows; within a few seconds no TcpFreeze program and no pin is left (before: the programs
    /// and pins stayed attached with nothing frozen), unless keep-attached is set: then the programs stay, idle.
    /// </summary>
    [RootTheory]
    [InlineData("while the hook thaws", false)]
    [InlineData("after the hook thawed", false)]
    [InlineData("after the hook thawed", true)]
    public async Task Criu_killed_at_pre_resume_leaves_every_connection_working_and_nothing_attached_unless_keep_attached(string when, bool keepAttached)
    {
        await using var busy = BusyEchoServer.Start(criu, _work, Connections);
        string log = Path.Combine(_work, "hook.log");
        busy.Runner.Environment["TCPFREEZE_LOG_FILE"] = log;
        (int dumpCode, _, string dumpLog) = busy.Runner.Dump(busy.Server.Pid);
        Assert.True(dumpCode == 0, CriuRunner.Tail(dumpLog));
        Assert.True(busy.Server.WaitUntilGone(TimeSpan.FromSeconds(10)));

        // CRIU runs action scripts itself (no shell between): the script's parent is CRIU.
        string script = Path.Combine(_work, "kill-criu-at-pre-resume.sh");
        File.WriteAllText(script, when == "while the hook thaws"
            ? $"""
              #!/bin/sh
              [ "$CRTOOLS_SCRIPT_ACTION" = "pre-resume" ] || exec "{criu.Hook}"
              "{criu.Hook}" &
              hook=$!
              sleep 0.005
              echo "test: SIGKILLing CRIU (PID $PPID) at pre-resume {when}" >&2
              kill -KILL $PPID
              wait $hook
              """
            : $"""
              #!/bin/sh
              [ "$CRTOOLS_SCRIPT_ACTION" = "pre-resume" ] || exec "{criu.Hook}"
              "{criu.Hook}"
              code=$?
              echo "test: SIGKILLing CRIU (PID $PPID) at pre-resume {when}" >&2
              kill -KILL $PPID
              exit $code
              """);
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var killing = new CriuRunner(criu.Criu, script, busy.Network.NameB, _work, busy.Pins.Path);
        foreach ((string name, string value) in busy.Runner.Environment)
            killing.Environment[name] = value;
        killing.Environment["TCPFREEZE_KEEP_ATTACHED"] = keepAttached ? "true" : "false";

        (_, _, string restoreLog) = killing.Restore();
        var sinceKill = Stopwatch.StartNew();
        Assert.Contains("test: SIGKILLing CRIU", restoreLog);
        Assert.DoesNotContain("tcpfreeze-hook: post-resume", restoreLog);
        Assert.True(busy.Server.IsRunning, "the restored server did not run on after CRIU was killed");

        while (!keepAttached && TcpFreezer.IsAttached(busy.ServerSide) && sinceKill.Elapsed < TimeSpan.FromSeconds(5))
            Thread.Sleep(20);
        TimeSpan detachedAfter = sinceKill.Elapsed;
        busy.AssertEveryConnectionFlows(3, TimeSpan.FromSeconds(20), $"after CRIU was killed at pre-resume {when}");
        string said = File.Exists(log) ? ReadAll(log) : "";
        if (keepAttached)
        {
            Thread.Sleep(TimeSpan.FromSeconds(1));
            Assert.True(TcpFreezer.IsAttached(busy.ServerSide), $"keep-attached, yet the programs were detached: {said}");
            int frozen = busy.Network.B.Run(() =>
            {
                using TcpFreezer freezer = TcpFreezer.Open(busy.ServerSide);
                return freezer.ListConnections().Count(c => !c.IsExpired);
            });
            Assert.Equal(0, frozen);
        }
        else
        {
            Assert.True(detachedAfter < TimeSpan.FromSeconds(5), $"still attached {detachedAfter} after CRIU was killed: {said}");
            KernelState.AssertNothingLeft(busy.Network.B, busy.ServerSide);
            Assert.Contains($"ended without detaching (killed at or after pre-resume?); nothing was frozen, so detached from", said);
        }
    }

    /// <summary>
    /// CRIU itself SIGKILLed part-way through a dump, once its log shows <paramref name="logLine"/>:
    /// the server keeps running (CRIU's parasite returns the tasks to their own code when its
    /// control socket closes), but from the first "Turning repair on" CRIU has put the sockets
    /// in TCP repair mode, where the server's recv fails with EPERM and its send with EINVAL, and
    /// nothing would take them out again. The dump watcher turns repair off in every socket of
    /// the tree before it thaws: every connection then carries checked data again, and the next
    /// migration with a healthy hook keeps every connection and leaves nothing.
    /// </summary>
    [RootTheory]
    [InlineData("Seized task", false)]
    [InlineData("Turning repair on", true)]
    [InlineData("Dumping pages", true)]
    [InlineData("Running post-dump scripts", true)]
    public async Task Criu_killed_mid_dump_leaves_every_connection_of_the_still_running_server_working(string logLine, bool socketsInRepair)
    {
        await using var busy = BusyEchoServer.Start(criu, _work, Connections);
        string watcherLog = Path.Combine(_work, "watcher.log");
        busy.Runner.Environment["TCPFREEZE_LOG_FILE"] = watcherLog;
        string dumpLog = Path.Combine(busy.Runner.Images, "dump.log");

        Task<(int ExitCode, TimeSpan Elapsed, string Log)> dump = Task.Run(() => busy.Runner.Dump(busy.Server.Pid));
        int criuPid = KillCriuWhenItLogs(dumpLog, logLine, dump);
        (int code, _, string log) = await dump;
        List<int> helpers = LeftoverCriuProcesses();
        Assert.NotEqual(0, code);
        Assert.True(busy.Server.IsRunning, "the server died with CRIU");

        try
        {
            // Every connection must answer 3 more checked messages; count how many do (a reset one never will).
            long[] start = busy.Load.Snapshot();
            var wait = Stopwatch.StartNew();
            while (wait.Elapsed < TimeSpan.FromSeconds(20) && busy.Load.Connections.Any(c => c.Failure is null && Interlocked.Read(ref c.Replies) < start[c.Id] + 3))
                Thread.Sleep(20);
            int kept = busy.Load.Connections.Count(c => c.Failure is null && Interlocked.Read(ref c.Replies) >= start[c.Id] + 3);
            Assert.True(kept == Connections,
                $"kept {kept}/{Connections} connections after CRIU (PID {criuPid}) was SIGKILLed at '{logLine}': {string.Join("; ", busy.Load.Failures.Take(3))} " +
                $"[watcher: {(File.Exists(watcherLog) ? ReadAll(watcherLog).Trim() : "no log")}] [criu: {CriuRunner.Tail(log, 3)}]");
            Assert.Empty(busy.Load.Failures);
            Assert.Empty(StoppedTasks(busy.Server.Pid));

            // The watcher says what it did (its last line follows the thaw by microseconds).
            string said = "";
            for (var bound = Stopwatch.StartNew(); bound.Elapsed < TimeSpan.FromSeconds(5) && !said.Contains("thawed"); Thread.Sleep(20))
                said = File.Exists(watcherLog) ? ReadAll(watcherLog) : "";
            Assert.Contains($"CRIU ended and PID {busy.Server.Pid} still runs (--leave-running, pre-dump or a failed dump): thawed", said);
            Match released = Regex.Match(said, @"took (\d+) of \d+ TCP sockets in \d+ processes out of TCP repair mode");
            if (socketsInRepair)
                Assert.True(released.Success && int.Parse(released.Groups[1].Value) > 0, $"the watcher released no socket from repair mode: {said}");
            Assert.DoesNotContain("stayed in it", said);
        }
        finally
        {
            // Children CRIU forked (e.g. its kerndat probe, stopped under PTRACE_TRACEME) outlive it; they are not the dumped tree.
            foreach (int helper in helpers)
                try { Process.GetProcessById(helper).Kill(); } catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception) { }
        }

        (int againCode, _, string againLog) = busy.Runner.Dump(busy.Server.Pid);
        Assert.True(againCode == 0, CriuRunner.Tail(againLog));
        Assert.True(busy.Server.WaitUntilGone(TimeSpan.FromSeconds(10)));
        (int restoreCode, _, string restoreLog) = busy.Runner.Restore();
        Assert.True(restoreCode == 0, CriuRunner.Tail(restoreLog));
        busy.AssertEveryConnectionFlows(3, TimeSpan.FromSeconds(30), "after the migration that followed the killed dump");
        KernelState.AssertNothingLeft(busy.Network.B, busy.ServerSide);
    }

    /// <summary>Waits (bounded) until CRIU's log contains <paramref name="line"/>, then SIGKILLs CRIU at once; returns its PID.</summary>
    private int KillCriuWhenItLogs(string logFile, string line, Task dump)
    {
        var clock = Stopwatch.StartNew();
        int criuPid = -1;
        string seen = "";
        long offset = 0;
        while (clock.Elapsed < TimeSpan.FromSeconds(60) && !dump.IsCompleted)
        {
            if (criuPid < 0)
                criuPid = FindCriu();
            if (criuPid > 0 && File.Exists(logFile))
            {
                // Only the new part of the log, plus the end of the last read for a line split between reads.
                string added = ReadShared(logFile, ref offset);
                seen = seen[Math.Max(0, seen.Length - line.Length)..] + added;
            }
            if (seen.Contains(line, StringComparison.Ordinal))
            {
                Process.GetProcessById(criuPid).Kill();
                return criuPid;
            }
            Thread.Sleep(1);
        }
        throw new InvalidOperationException($"CRIU never logged '{line}' (its PID: {criuPid}, dump ended: {dump.IsCompleted})");
    }

    private static string ReadAll(string path)
    {
        long offset = 0;
        return ReadShared(path, ref offset);
    }

    /// <summary>What was written to <paramref name="path"/> after <paramref name="offset"/>, which moves to its end.</summary>
    private static string ReadShared(string path, ref long offset)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        stream.Seek(offset, SeekOrigin.Begin);
        string text = new StreamReader(stream).ReadToEnd();
        offset = stream.Position;
        return text;
    }

    /// <summary>The CRIU dump running on this test's images (the one this process started through nsenter, which execs it, not a child CRIU forked), or -1.</summary>
    private int FindCriu()
    {
        string images = Path.Combine(_work, "images");
        foreach (int pid in Pids())
        {
            string[] argv = Argv(pid);
            if (argv.Length > 1 && argv[0] == criu.Criu && argv[1] == "dump" && argv.Contains(images) && ParentOf(pid) == Environment.ProcessId)
                return pid;
        }
        return -1;
    }

    /// <summary>Processes CRIU forked for this test's dump that outlived it (same command line).</summary>
    private List<int> LeftoverCriuProcesses()
    {
        string images = Path.Combine(_work, "images");
        return Pids().Where(pid => Argv(pid) is [var program, "dump", ..] argv && program == criu.Criu && argv.Contains(images)).ToList();
    }

    private static IEnumerable<int> Pids() => Directory.EnumerateDirectories("/proc").Select(Path.GetFileName).Where(n => n!.All(char.IsAsciiDigit)).Select(n => int.Parse(n!));

    private static string[] Argv(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/cmdline").Split('\0', StringSplitOptions.RemoveEmptyEntries); }
        catch (IOException) { return []; }
        catch (UnauthorizedAccessException) { return []; }
    }

    private static (char State, int Parent) Stat(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            string[] rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return (rest[0][0], int.Parse(rest[1]));
        }
        catch (IOException) { return ('X', -1); }
    }

    private static int ParentOf(int pid) => Stat(pid).Parent;

    private static List<int> ChildrenOf(int pid) => Pids().Where(p => ParentOf(p) == pid).ToList();

    /// <summary>Tasks of the tree under <paramref name="root"/> (itself included) that are stopped (state T or t).</summary>
    private static List<string> StoppedTasks(int root)
    {
        var stopped = new List<string>();
        var queue = new Queue<int>([root]);
        while (queue.Count > 0)
        {
            int pid = queue.Dequeue();
            foreach (string task in Directory.Exists($"/proc/{pid}/task") ? Directory.EnumerateDirectories($"/proc/{pid}/task") : [])
            {
                int tid = int.Parse(Path.GetFileName(task));
                if (Stat(tid).State is 'T' or 't')
                    stopped.Add($"{tid} ({Stat(tid).State})");
            }
            foreach (int child in ChildrenOf(pid))
                queue.Enqueue(child);
        }
        return stopped;
    }
}
