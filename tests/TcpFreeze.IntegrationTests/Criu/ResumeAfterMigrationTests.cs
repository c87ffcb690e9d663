using System.Diagnostics;
using Xunit.Abstractions;

namespace TcpFreeze.Tests.Criu;

/// <summary>
/// What clients see after a CRIU migration with a pause between the dump and the restore (an
/// image copy): their requests sent meanwhile were dropped and their retransmission timers
/// backed off. With the resume kick at pre-resume they are answered at once; without it, at
/// their next retransmission.
/// </summary>
public sealed class ResumeAfterMigrationTests(CriuFixture criu, ITestOutputHelper output) : CriuTest("tcpfreeze-resume-")
{
    private const int Connections = 100;
    private static readonly TimeSpan CopyDelay = TimeSpan.FromSeconds(5);

    /// <summary>Generous for CI; the kicked resume measured here is a few milliseconds, without it 1-2 s.</summary>
    private static readonly TimeSpan KickBound = TimeSpan.FromMilliseconds(500);

    [RootTheory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task After_a_migration_with_a_copy_pause_every_connection_answers_at_once_with_the_kick_and_after_its_back_off_without(bool kick)
    {
        await using var busy = BusyEchoServer.Start(criu, _work, Connections);
        busy.Runner.Environment["TCPFREEZE_KICK"] = kick ? "true" : "false";

        (int dumpCode, _, string dumpLog) = busy.Runner.Dump(busy.Server.Pid);
        Assert.True(dumpCode == 0, $"criu dump failed:\n{CriuRunner.Tail(dumpLog)}");
        Assert.True(busy.Server.WaitUntilGone(TimeSpan.FromSeconds(10)), "the dumped server's PID did not go away");
        Thread.Sleep(CopyDelay);
        (int restoreCode, _, string restoreLog) = busy.Runner.Restore();
        long restored = Stopwatch.GetTimestamp();
        Assert.True(restoreCode == 0, $"criu restore failed:\n{CriuRunner.Tail(restoreLog)}");
        long[] atRestore = busy.Load.Snapshot();

        // Each connection's first answer after the restore ended.
        var lag = new TimeSpan?[Connections];
        var clock = Stopwatch.StartNew();
        while (lag.Any(l => l is null) && clock.Elapsed < TimeSpan.FromSeconds(20))
        {
            foreach (ClientLoad.Connection c in busy.Load.Connections)
                if (lag[c.Id] is null && Interlocked.Read(ref c.Replies) > atRestore[c.Id])
                    lag[c.Id] = Stopwatch.GetElapsedTime(restored);
            Thread.Sleep(1);
        }
        Assert.True(lag.All(l => l is not null), $"{lag.Count(l => l is null)} connections did not answer within 20 s of the restore: {string.Join("; ", busy.Load.Failures.Take(5))}");
        TimeSpan[] sorted = lag.Select(l => l!.Value).Order().ToArray();
        string summary = $"kick {(kick ? "on" : "off")}: resume lag p50 {sorted[Connections / 2].TotalMilliseconds:F0} ms, " +
                         $"p99 {sorted[Connections * 99 / 100].TotalMilliseconds:F0} ms, max {sorted[^1].TotalMilliseconds:F0} ms";
        output.WriteLine(summary);
        foreach (string line in restoreLog.Split('\n').Where(l => l.Contains("tcpfreeze-hook: pre-resume")))
            output.WriteLine(line);

        if (kick)
        {
            Assert.Contains("resume kick:", restoreLog);
            Assert.True(sorted[^1] <= KickBound, summary);
        }
        else
        {
            Assert.DoesNotContain("resume kick:", restoreLog);
            Assert.True(sorted[Connections / 2] > KickBound, $"no back-off to show: {summary}");
        }
        busy.AssertEveryConnectionFlows(5, TimeSpan.FromSeconds(40), "after the restore");
    }
}
