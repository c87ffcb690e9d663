using System.Diagnostics;
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
}
