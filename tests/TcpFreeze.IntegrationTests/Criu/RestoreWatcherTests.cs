using System.Diagnostics;
using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.Criu;

/// <summary>
/// The published hook's restore watcher on its own, watching a stand-in for CRIU (a process the test ends): once
/// "CRIU" has ended it detaches only when idle, as post-resume does: never while another process has the frozen set
/// open (a pre-resume hook that outlives its killed CRIU, another migration about to freeze) or anything is frozen
/// (then it waits for the lease of what is frozen to end).
/// </summary>
public sealed class RestoreWatcherTests(CriuFixture criu) : CriuTest("tcpfreeze-restore-watcher-")
{
    [RootFact]
    public void Once_criu_ended_the_watcher_waits_while_another_process_has_the_set_open_and_detaches_when_it_closes()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B);
        TcpFreezer holder = network.B.Run(() => TcpFreezer.Attach(options)); // open, nothing frozen
        using Process criuStandIn = Process.Start("sleep", "60");
        try
        {
            using Process watcher = StartWatcher(network.NameB, criuStandIn.Id, pins.Path, "watcher.log");
            criuStandIn.Kill();
            // Within its grace the watcher tries again and again; the holder's open set keeps everything.
            Assert.False(watcher.WaitForExit(TimeSpan.FromSeconds(1)), "the watcher gave up while the set was open");
            Assert.True(TcpFreezer.IsAttached(options), "the watcher detached while another process had the set open");
            holder.Dispose();
            Assert.True(watcher.WaitForExit(TimeSpan.FromSeconds(10)), "the watcher did not end");
            Assert.False(TcpFreezer.IsAttached(options), $"the watcher left the programs attached: {Log("watcher.log")}");
            KernelState.AssertNothingLeft(network.B, options);
            Assert.Contains("nothing was frozen, so detached from", Log("watcher.log"));
        }
        finally
        {
            holder.Dispose();
            TcpFreezer.Detach(options);
        }
    }

    /// <summary>
    /// Another migration's frozen connections (this restore's pre-resume thawed its own, so pre-restore's state is gone):
    /// the watcher leaves the programs to that migration at once, without holding the set open meanwhile (its idle
    /// detach would keep the programs while a probe had the set open).
    /// </summary>
    [RootFact]
    public void Once_criu_ended_the_watcher_leaves_another_migrations_freeze_alone_at_once()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B);
        Freeze(network, options, TimeSpan.FromSeconds(60));
        using Process criuStandIn = Process.Start("sleep", "60");
        try
        {
            using Process watcher = StartWatcher(network.NameB, criuStandIn.Id, pins.Path, "watcher.log");
            criuStandIn.Kill();
            Assert.True(watcher.WaitForExit(TimeSpan.FromSeconds(2)), "the watcher stayed on for another migration's freeze");
            Assert.True(TcpFreezer.IsAttached(options), "the watcher detached while another migration's connection was frozen");
            Assert.Contains("they stay attached for them", Log("watcher.log"));
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }

    /// <summary>A restore that failed (CRIU ended before pre-resume) keeps its connections frozen for a retry until their lease ends; then the watcher detaches.</summary>
    [RootFact]
    public void Once_criu_ended_before_pre_resume_the_watcher_keeps_the_restores_freeze_until_its_lease_ends_and_then_detaches()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B);
        ConnectionKey key = Freeze(network, options, TimeSpan.FromSeconds(7));
        using Process criuStandIn = Process.Start("sleep", "60");
        // What pre-restore leaves for pre-resume and post-resume, named after "CRIU".
        string state = HookStateStore.RestoreStatePath(criuStandIn.Id);
        Directory.CreateDirectory(HookStateStore.RuntimeDirectory);
        FreezeManifest.WriteJson(HookStateStore.RuntimeDirectory, Path.GetFileName(state), FreezeManifest.Create(4242, TimeSpan.FromSeconds(7), [key], []).ToJson());
        try
        {
            using Process watcher = StartWatcher(network.NameB, criuStandIn.Id, pins.Path, "watcher.log");
            criuStandIn.Kill();
            // Past its 3 s grace, within the lease: the frozen connection keeps the programs.
            Assert.False(watcher.WaitForExit(TimeSpan.FromSeconds(4.5)), $"the watcher ended while a connection was frozen: {Log("watcher.log")}");
            Assert.True(TcpFreezer.IsAttached(options), "the watcher detached while a connection was frozen");
            int frozen = network.B.Run(() =>
            {
                using TcpFreezer freezer = TcpFreezer.Open(options);
                return freezer.ListConnections().Count(c => !c.IsExpired);
            });
            Assert.Equal(1, frozen);
            Assert.Contains("ended before pre-resume thawed its connections", Log("watcher.log"));
            Assert.True(watcher.WaitForExit(TimeSpan.FromSeconds(15)), "the watcher did not end after the lease");
            KernelState.AssertNothingLeft(network.B, options);
            Assert.Contains("nothing was frozen, so detached from", Log("watcher.log"));
        }
        finally
        {
            HookStateStore.TryRemove(state);
            TcpFreezer.Detach(options);
        }
    }

    /// <summary>Attaches in the namespace and freezes one connection just in time, as pre-restore does.</summary>
    private static ConnectionKey Freeze(TestNetwork network, FreezerOptions options, TimeSpan lease)
    {
        ConnectionKey key = ConnectionKey.Parse($"{network.AddressB(System.Net.Sockets.AddressFamily.InterNetwork)}:7000 -> {network.AddressA(System.Net.Sockets.AddressFamily.InterNetwork)}:40000");
        network.B.Run(() =>
        {
            using TcpFreezer freezer = TcpFreezer.Attach(options);
            return freezer.Freeze([key], [], lease, FreezeTiming.JustInTime);
        });
        return key;
    }

    /// <summary>
    /// The restore watcher in namespace <paramref name="ns"/> (nsenter execs it), as pre-restore starts it: the front end,
    /// which waits for "CRIU" and then becomes the engine.
    /// </summary>
    private Process StartWatcher(string ns, int criuPid, string pinRoot, string log)
    {
        var info = new ProcessStartInfo("nsenter") { UseShellExecute = false };
        foreach (string argument in new[] { $"--net=/run/netns/{ns}", criu.Hook, RestoreWatcher.Argument,
                     criuPid.ToString(), pinRoot, Path.Combine(_work, log), "60" })
            info.ArgumentList.Add(argument);
        Process watcher = Process.Start(info) ?? throw new InvalidOperationException("the watcher did not start");
        // A stand-in gone before the watcher opened its pidfd counts as ended too; the test is of the wait, so it waits for that pidfd.
        for (var clock = Stopwatch.StartNew(); !HoldsPidfd(watcher.Id); Thread.Sleep(10))
            if (clock.Elapsed > TimeSpan.FromSeconds(10) || watcher.HasExited)
                throw new InvalidOperationException("the watcher did not open its pidfd of the stand-in for CRIU");
        return watcher;
    }

    private static bool HoldsPidfd(int pid)
    {
        try
        {
            return Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd").Any(fd => new FileInfo(fd).LinkTarget == "anon_inode:[pidfd]");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private string Log(string name) => File.Exists(Path.Combine(_work, name)) ? File.ReadAllText(Path.Combine(_work, name)) : "(no log)";
}
