using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.Criu;

/// <summary>
/// A <c>criu pre-dump</c> round (pre-copy) with the hook as action script: CRIU 4.2.1 runs no action
/// script in it (cr_pre_dump_tasks never calls run_scripts), so nothing is frozen and no client stalls.
/// On this kernel the round itself aborts (no memory dirty tracking: BUG at criu/mem.c:46) after
/// seizing the tasks, long past the point where a pre-dump script would run; the server runs on. Where
/// the kernel tracks dirty memory the round succeeds, and the same holds. Should a CRIU ever run the
/// hook in such a round, the hook recognises it by CRIU's command line and freezes nothing
/// (CriuCommandLineTests).
/// </summary>
public sealed class PreDumpRoundTests(CriuFixture criu) : CriuTest("tcpfreeze-predump-")
{
    [RootFact]
    public async Task A_criu_pre_dump_round_runs_no_action_script_and_freezes_no_connection()
    {
        await using var busy = BusyEchoServer.Start(criu, _work, 40);
        string images = Path.Combine(_work, "pre-dump");
        Directory.CreateDirectory(images);
        string marker = Path.Combine(_work, "actions.log");
        string logger = Path.Combine(_work, "log-action.sh");
        File.WriteAllText(logger, $"#!/bin/sh\necho \"$CRTOOLS_SCRIPT_ACTION\" >> \"{marker}\"\n");
        File.SetUnixFileMode(logger, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        (int code, string stdout, string stderr) = Run.Capture("nsenter",
            [$"--net=/run/netns/{busy.Network.NameB}", criu.Criu, "pre-dump", "-t", busy.Server.Pid.ToString(), "-D", images, "-o", "pre-dump.log", "-v4",
             "--tcp-established", "--network-lock", "skip", "--action-script", logger, "--action-script", criu.Hook],
            busy.Runner.Environment, TimeSpan.FromMinutes(2));
        string log = File.ReadAllText(Path.Combine(images, "pre-dump.log"));

        Assert.True(code == 0 || log.Contains("Error (criu/mem.c", StringComparison.Ordinal),
            $"criu pre-dump failed ({code}) other than for the missing dirty tracking:\n{stdout}{stderr}{CriuRunner.Tail(log)}");
        Assert.False(File.Exists(marker), $"CRIU ran action scripts in a pre-dump round: {(File.Exists(marker) ? File.ReadAllText(marker) : "")}");
        Assert.DoesNotContain("tcpfreeze-hook", log);
        Assert.False(TcpFreezer.IsAttached(busy.ServerSide), "the pre-dump round attached TcpFreeze");
        Assert.True(busy.Server.IsRunning, "the server did not survive the pre-dump round");
        busy.AssertEveryConnectionFlows(3, TimeSpan.FromSeconds(20), "after the pre-dump round");
    }
}
