using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using TcpFreeze.Tests.Infrastructure;
using Xunit.Abstractions;

namespace TcpFreeze.Tests.Criu;

/// <summary>
/// Post-copy (lazy pages) migrations with the hook across the two namespace "hosts": the freeze holds
/// from the source's dump while its page server runs, until the destination's pre-resume; a transfer
/// that fails leaves the server running on the source with nothing frozen and no socket in repair mode.
/// </summary>
public sealed class LazyPagesMigrationTests(CriuFixture criu, ITestOutputHelper output) : CriuTest("tcpfreeze-lazy-")
{
    private const int Connections = 100;
    private const int MemoryMiB = 64;
    private static readonly TimeSpan Pause = TimeSpan.FromMilliseconds(25);

    /// <summary>How long the dump watcher waits for the task to die after CRIU ends (DumpWatcher.KillGrace), and a second.</summary>
    private static readonly TimeSpan WatcherGrace = TimeSpan.FromSeconds(4);

    [RootFact]
    public async Task A_server_that_touched_64_MiB_migrates_with_lazy_pages_keeping_every_connection_and_every_page()
    {
        using var hosts = BridgedHosts.Create();
        using var pins = new PinRoot();
        using var pipes = PipeSizeLimit.AtLeast(PipeSizeLimit.ForCriuLazyPages);
        var client = NetworkNamespace.Named(hosts.Client);
        using var server = MemoryEchoServer.Start(hosts.HostA, _work, new IPEndPoint(hosts.Service, 7000), MemoryMiB);
        await using ClientLoad load = ClientLoad.Echo(client, server.Endpoint, Connections, Pause);
        Assert.True(load.WaitForProgress(_ => 3, TimeSpan.FromSeconds(30)), string.Join("; ", load.Failures.Take(5)));
        using var migration = new LazyPagesMigration(criu.Criu, criu.Hook, hosts, _work, pins.Path);
        FreezerOptions hostA = pins.Options(NetworkNamespace.Named(hosts.HostA)), hostB = pins.Options(NetworkNamespace.Named(hosts.HostB));
        try
        {
            Assert.True(migration.StartDump(server.Pid, TimeSpan.FromSeconds(60)), $"the page server did not start:\n{CriuRunner.Tail(migration.WaitForDump(TimeSpan.Zero).Log)}");
            var manifest = TcpFreeze.CriuHooks.FreezeManifest.Read(migration.SourceImages);
            Assert.Equal(Connections, manifest.Connections.Count);

            // The page server runs: the task lives on, stopped, with its memory; the watcher must not take
            // that for a dump that left it running. Longer than its grace, every connection stays frozen.
            Thread.Sleep(WatcherGrace);
            Assert.True(DumpableServer.IsAlive(server.Pid), "the source server died before its memory was handed over");
            Assert.Equal(Connections, FrozenConnections(hostA));

            hosts.RemoveServiceFromHostA();
            migration.CopyImages();
            Assert.True(migration.StartLazyPagesDaemon(TimeSpan.FromSeconds(30)), $"criu lazy-pages did not start:\n{CriuRunner.Tail(migration.WaitForDaemon(TimeSpan.Zero).Log)}");
            Assert.Equal(Connections, FrozenConnections(hostA));

            (int restoreCode, TimeSpan restoreTime, string restoreLog, int? restored) = migration.Restore(hosts.WriteAddressMoveScript(_work));
            server.RestoredPid = restored;
            Assert.True(restoreCode == 0, $"criu restore --lazy-pages on hostB failed:\n{CriuRunner.Tail(restoreLog)}");
            Assert.Contains($"tcpfreeze-hook: pre-restore: froze {Connections} connections", restoreLog);
            Assert.Contains("tcpfreeze-hook: pre-resume: thawed", restoreLog);

            (int? dumpCode, string dumpLog) = migration.WaitForDump(TimeSpan.FromSeconds(120));
            Assert.True(dumpCode == 0, $"the source's dump did not end well ({dumpCode}):\n{CriuRunner.Tail(dumpLog)}");
            Assert.Contains("Lazy pages transfer finished successfully", dumpLog);
            (int? daemonCode, string daemonLog) = migration.WaitForDaemon(TimeSpan.FromSeconds(30));
            Assert.True(daemonCode == 0, $"criu lazy-pages failed ({daemonCode}):\n{CriuRunner.Tail(daemonLog)}");
            Assert.True(server.WaitUntilSourceGone(TimeSpan.FromSeconds(10)), "the source server still runs after the transfer");

            long[] atRestore = load.Snapshot();
            Assert.True(load.WaitForProgress(id => atRestore[id] + 5, TimeSpan.FromSeconds(40)),
                $"not every connection came back on hostB: {string.Join("; ", load.Failures.Take(5))}");
            Assert.Empty(load.Failures);
            Assert.Equal(server.Hash, server.QueryHash(client, TimeSpan.FromSeconds(30)));
            KernelState.AssertNothingLeft(NetworkNamespace.Named(hosts.HostB), hostB);
            output.WriteLine($"restore {restoreTime.TotalMilliseconds:F0} ms; " +
                             string.Join("; ", (dumpLog + restoreLog).Split('\n').Where(l => l.Contains("tcpfreeze-hook:"))));
        }
        finally
        {
            TcpFreezer.Detach(hostA);
            TcpFreezer.Detach(hostB);
        }
    }

    /// <summary>
    /// The transfer breaks before the destination has the memory (its connection to the page server is
    /// reset): CRIU reports "Lazy pages transfer FAILED" and resumes the tasks on the source, but skips its
    /// network unlock, so every dumped socket is still in TCP repair mode. The dump watcher takes them out
    /// and thaws: every connection carries checked data again and nothing stays frozen. (A break after the
    /// lease has ended loses the connections: see DumpWatcher.)
    /// </summary>
    [RootFact]
    public async Task When_the_lazy_transfer_breaks_the_server_runs_on_at_the_source_with_every_connection_and_nothing_frozen()
    {
        const int LeaseSeconds = 20;
        using var hosts = BridgedHosts.Create();
        using var pins = new PinRoot();
        using var pipes = PipeSizeLimit.AtLeast(PipeSizeLimit.ForCriuLazyPages);
        using var server = MemoryEchoServer.Start(hosts.HostA, _work, new IPEndPoint(hosts.Service, 7000), MemoryMiB);
        await using ClientLoad load = ClientLoad.Echo(NetworkNamespace.Named(hosts.Client), server.Endpoint, Connections, Pause);
        Assert.True(load.WaitForProgress(_ => 3, TimeSpan.FromSeconds(30)), string.Join("; ", load.Failures.Take(5)));
        using var migration = new LazyPagesMigration(criu.Criu, criu.Hook, hosts, _work, pins.Path);
        string watcherLog = Path.Combine(_work, "watcher.log");
        migration.Environment["TCPFREEZE_LEASE_SECONDS"] = LeaseSeconds.ToString();
        migration.Environment["TCPFREEZE_LOG_FILE"] = watcherLog;
        FreezerOptions hostA = pins.Options(NetworkNamespace.Named(hosts.HostA));
        try
        {
            Assert.True(migration.StartDump(server.Pid, TimeSpan.FromSeconds(60)), $"the page server did not start:\n{CriuRunner.Tail(migration.WaitForDump(TimeSpan.Zero).Log)}");
            Assert.Equal(Connections, FrozenConnections(hostA));

            var clock = Stopwatch.StartNew();
            BreakTransfer(hosts, migration.PageServer);
            (int? dumpCode, string dumpLog) = migration.WaitForDump(TimeSpan.FromSeconds(30));
            Assert.True(dumpCode is not null and not 0, $"the dump did not fail ({dumpCode}):\n{CriuRunner.Tail(dumpLog)}");
            Assert.Contains("Lazy pages transfer FAILED", dumpLog);
            Assert.True(DumpableServer.IsAlive(server.Pid), "the source server did not run on after the failed transfer");

            long[] start = load.Snapshot();
            Assert.True(load.WaitForProgress(id => start[id] + 3, TimeSpan.FromSeconds(30)),
                $"not every connection flowed again at the source: {string.Join("; ", load.Failures.Take(5))}; " +
                $"watcher: {(File.Exists(watcherLog) ? File.ReadAllText(watcherLog).Trim() : "no log")}");
            Assert.Empty(load.Failures);
            Assert.Equal(0, FrozenConnections(hostA, countExpired: true)); // thawed, not merely lapsed
            string said = File.ReadAllText(watcherLog);
            Assert.Contains($"CRIU ended and PID {server.Pid} still runs", said);
            Assert.Matches(@"took [1-9]\d* of \d+ TCP sockets in \d+ processes out of TCP repair mode", said);
            output.WriteLine($"every connection flowed again {clock.Elapsed.TotalSeconds:F1} s after the break; watcher: {said.Trim()}");
        }
        finally
        {
            TcpFreezer.Detach(hostA);
        }
    }

    /// <summary>A destination that connects to the page server and is reset: what a crashed or unreachable one looks like to the source.</summary>
    private static void BreakTransfer(BridgedHosts hosts, IPEndPoint pageServer)
    {
        using Socket socket = NetworkNamespace.Named(hosts.HostB).Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        socket.Connect(pageServer);
        Thread.Sleep(200); // CRIU accepts and waits for the first request
        socket.LingerState = new LingerOption(true, 0);
        socket.Close(); // RST
    }

    private static int FrozenConnections(FreezerOptions options, bool countExpired = false)
    {
        if (!TcpFreezer.IsAttached(options))
            return 0;
        using TcpFreezer freezer = TcpFreezer.Open(options);
        return freezer.ListConnections().Count(c => countExpired || !c.IsExpired);
    }
}
