using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.Criu;

/// <summary>CRIU runs that fail part-way: nothing may stay frozen longer than its lease, and nothing restores unlocked.</summary>
public sealed class FailureTests(CriuFixture criu) : CriuTest("tcpfreeze-criu-fail-")
{
    private const int Connections = 50;

    /// <summary>An extra action script, run after the hook, that makes CRIU abort the dump at pre-dump.</summary>
    private string FailingPreDumpScript()
    {
        string path = Path.Combine(_work, "fail-pre-dump.sh");
        File.WriteAllText(path, "#!/bin/sh\n[ \"$CRTOOLS_SCRIPT_ACTION\" = pre-dump ] && exit 1\nexit 0\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    [RootFact]
    public async Task A_dump_that_fails_after_pre_dump_is_thawed_by_the_dump_watcher_and_the_still_running_server_keeps_every_connection()
    {
        await using var busy = BusyEchoServer.Start(criu, _work, Connections);
        busy.Runner.ExtraScripts.Add(FailingPreDumpScript());

        (int code, _, string log) = busy.Runner.Dump(busy.Server.Pid);
        Assert.NotEqual(0, code);
        Assert.Contains("tcpfreeze-hook: pre-dump: froze 50 connections", log);
        Assert.True(busy.Server.IsRunning);

        // The watcher sees CRIU end while the server still runs (no SIGKILL pending) and at once thaws
        // and, with nothing else frozen, detaches: nothing is left.
        busy.AssertEveryConnectionFlows(3, TimeSpan.FromSeconds(20), "after the failed dump");
        Assert.True(SpinWait.SpinUntil(() => !TcpFreezer.IsAttached(busy.ServerSide), TimeSpan.FromSeconds(10)), "the watcher left the programs attached");
        KernelState.AssertNothingLeft(busy.Network.B, busy.ServerSide);
    }

    [RootFact]
    public async Task A_dump_with_leave_running_thaws_as_soon_as_criu_ends_and_the_server_keeps_every_connection()
    {
        await using var busy = BusyEchoServer.Start(criu, _work, Connections);
        busy.Runner.ExtraDumpArguments.Add("--leave-running");

        (int code, _, string log) = busy.Runner.Dump(busy.Server.Pid);
        Assert.True(code == 0, CriuRunner.Tail(log));
        Assert.Contains("tcpfreeze-hook: post-dump:", log);
        Assert.True(busy.Server.IsRunning, "--leave-running left no running server");

        // The watcher thaws the moment CRIU ends with the server still running (no SIGKILL pending), not
        // after a grace period (before: 3 s).
        var sinceDump = System.Diagnostics.Stopwatch.StartNew();
        busy.AssertEveryConnectionFlows(3, TimeSpan.FromSeconds(20), "after a --leave-running dump");
        Assert.True(sinceDump.Elapsed < TimeSpan.FromSeconds(1.5), $"the clients waited {sinceDump.Elapsed} after a --leave-running dump");
        Assert.True(SpinWait.SpinUntil(() => !TcpFreezer.IsAttached(busy.ServerSide), TimeSpan.FromSeconds(10)), "the watcher left the programs attached");
        KernelState.AssertNothingLeft(busy.Network.B, busy.ServerSide);
        Assert.False(Directory.EnumerateFiles(TcpFreeze.CriuHooks.HookStateStore.RuntimeDirectory, $"dump-*-{busy.Server.Pid}.json").Any(), "the watcher left its state file");
    }

    [RootFact]
    public async Task With_the_dump_watcher_killed_a_failed_dump_stays_frozen_only_until_the_lease_ends()
    {
        await using var busy = BusyEchoServer.Start(criu, _work, Connections);
        busy.Runner.Environment["TCPFREEZE_LEASE_SECONDS"] = "6";
        // A fault: the watcher dies before it can thaw. The failing script kills it while CRIU still runs (the hook's
        // line naming it is in CRIU's log by then): killed after CRIU's end, it could already have thawed (a CI run).
        string path = Path.Combine(_work, "kill-watcher-and-fail-pre-dump.sh");
        File.WriteAllText(path, """
            #!/bin/sh
            [ "$CRTOOLS_SCRIPT_ACTION" = pre-dump ] || exit 0
            pid=$(sed -n 's/.*dump watcher PID \([0-9][0-9]*\).*/\1/p' "$CRTOOLS_IMAGE_DIR/dump.log" | tail -n 1)
            [ -n "$pid" ] && kill -9 "$pid"
            exit 1

            """);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        busy.Runner.ExtraScripts.Add(path);

        (int code, _, string log) = busy.Runner.Dump(busy.Server.Pid);
        Assert.NotEqual(0, code);
        int watcher = int.Parse(Regex.Match(log, @"dump watcher PID (\d+)").Groups[1].Value);
        Assert.True(SpinWait.SpinUntil(() => !File.Exists($"/proc/{watcher}/stat") || File.ReadAllText($"/proc/{watcher}/stat").Split(')')[1].TrimStart().StartsWith('Z'),
            TimeSpan.FromSeconds(5)), $"the script did not kill the dump watcher PID {watcher}");
        var clock = Stopwatch.StartNew();

        long[] frozenAt = busy.Load.Snapshot();
        Thread.Sleep(TimeSpan.FromSeconds(3)); // well inside the 6-second lease: must still be frozen
        Assert.True(busy.Load.Snapshot().Zip(frozenAt).All(p => p.First <= p.Second + 1), "connections flowed before the lease ended");
        busy.AssertEveryConnectionFlows(3, TimeSpan.FromSeconds(30), "after the lease");
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(4), $"traffic resumed after {clock.Elapsed}, before the lease could have ended");
    }

    [RootTheory]
    [InlineData("missing")]
    [InlineData("corrupt")]
    public async Task A_restore_without_a_readable_manifest_fails_clearly_and_freezes_nothing(string damage)
    {
        await using var busy = BusyEchoServer.Start(criu, _work, 5);
        (int dumpCode, _, string dumpLog) = busy.Runner.Dump(busy.Server.Pid);
        Assert.True(dumpCode == 0, CriuRunner.Tail(dumpLog));
        Assert.True(busy.Server.WaitUntilGone(TimeSpan.FromSeconds(10)));
        string manifest = Path.Combine(busy.Runner.Images, FreezeManifest.FileName);
        if (damage == "missing")
            File.Delete(manifest);
        else
            File.WriteAllText(manifest, "{ \"version\": 1, \"connections\": [\"not an endpoint\"");

        HashSet<ConnectionKey> before;
        using (TcpFreezer freezer = TcpFreezer.Open(busy.ServerSide))
            before = freezer.ListConnections().Select(c => c.Key).ToHashSet();

        (int code, _, string log) = busy.Runner.Restore();
        Assert.NotEqual(0, code);
        Assert.Contains("tcpfreeze-hook: pre-restore failed:", log);
        Assert.Contains(damage == "missing" ? "there is no tcpfreeze-manifest.json" : "is corrupt", log);
        Assert.False(busy.Server.IsRunning, "CRIU restored the server without a lock");

        using (TcpFreezer freezer = TcpFreezer.Open(busy.ServerSide))
            Assert.Equal(before, freezer.ListConnections().Select(c => c.Key).ToHashSet());
    }
}
