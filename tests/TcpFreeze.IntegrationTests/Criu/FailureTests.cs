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

        // The freeze was just in time and CRIU never reached a socket: nothing was held. The watcher
        // sees CRIU end while the server still runs (no SIGKILL pending) and at once thaws and, with
        // nothing else frozen, detaches: nothing is left.
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

        // Just in time, each connection was held only while CRIU had its socket in repair mode, and CRIU
        // takes them out at the end of the dump: no client waits for the watcher's thaw (before: a 3 s grace).
        var sinceDump = System.Diagnostics.Stopwatch.StartNew();
        busy.AssertEveryConnectionFlows(3, TimeSpan.FromSeconds(20), "after a --leave-running dump");
        Assert.True(sinceDump.Elapsed < TimeSpan.FromSeconds(1.5), $"the clients waited {sinceDump.Elapsed} after a --leave-running dump");
        Assert.True(SpinWait.SpinUntil(() => !TcpFreezer.IsAttached(busy.ServerSide), TimeSpan.FromSeconds(10)), "the watcher left the programs attached");
        KernelState.AssertNothingLeft(busy.Network.B, busy.ServerSide);
        Assert.False(Directory.EnumerateFiles(TcpFreeze.CriuHooks.HookStateStore.RuntimeDirectory, $"dump-*-{busy.Server.Pid}.json").Any(), "the watcher left its state file");
    }

    [RootFact]
    public async Task With_the_dump_watcher_killed_a_failed_dump_holds_no_connection_and_its_entries_end_with_the_lease()
    {
        await using var busy = BusyEchoServer.Start(criu, _work, Connections);
        busy.Runner.Environment["TCPFREEZE_LEASE_SECONDS"] = "6";
        busy.Runner.ExtraScripts.Add(FailingPreDumpScript());

        (int code, _, string log) = busy.Runner.Dump(busy.Server.Pid);
        Assert.NotEqual(0, code);
        int watcher = int.Parse(Regex.Match(log, @"dump watcher PID (\d+)").Groups[1].Value);
        Process.GetProcessById(watcher).Kill(); // a fault: the watcher dies before it can thaw
        var clock = Stopwatch.StartNew();

        // The entries are still there, but they are just in time and no socket is in repair mode:
        // every connection flows while they last (before the just-in-time rule: all stalled until the lease ended).
        busy.AssertEveryConnectionFlows(3, TimeSpan.FromSeconds(3), "with the failed dump's entries still in place");
        using (TcpFreezer freezer = TcpFreezer.Open(busy.ServerSide))
            Assert.Contains(freezer.ListConnections(), c => !c.IsExpired);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(6), "the check ran past the lease");
        Assert.True(SpinWait.SpinUntil(() =>
        {
            using TcpFreezer freezer = TcpFreezer.Open(busy.ServerSide);
            return freezer.ListConnections().All(c => c.IsExpired);
        }, TimeSpan.FromSeconds(15)), "the entries outlived their lease");
        busy.AssertEveryConnectionFlows(3, TimeSpan.FromSeconds(10), "after the lease");
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
