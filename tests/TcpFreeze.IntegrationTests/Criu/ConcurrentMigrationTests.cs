using System.Net;
using System.Net.Sockets;
using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.Criu;

/// <summary>Two migrations of different processes in one namespace at the same time, sharing one pin root.</summary>
public sealed class ConcurrentMigrationTests(CriuFixture criu) : CriuTest("tcpfreeze-criu-pair-")
{
    private const int Connections = 60;

    private sealed record Migration(DumpableServer Server, ClientLoad Load, CriuRunner Runner);

    [RootFact]
    public async Task Two_migrations_at_once_never_thaw_each_others_connections()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions serverSide = pins.Options(network.B);
        var migrations = new List<Migration>();
        try
        {
            foreach (int port in new[] { 7000, 7001 })
            {
                string work = Directory.CreateDirectory(Path.Combine(_work, port.ToString())).FullName;
                var endpoint = new IPEndPoint(network.AddressB(AddressFamily.InterNetwork), port);
                DumpableServer server = EchoServer.Start(network.NameB, work, endpoint);
                ClientLoad load = ClientLoad.Stream(network.A, endpoint, Connections, TimeSpan.FromMilliseconds(20));
                migrations.Add(new Migration(server, load, new CriuRunner(criu.Criu, criu.Hook, network.NameB, work, pins.Path)));
            }
            foreach (Migration m in migrations)
                Assert.True(m.Load.WaitForProgress(_ => 3, TimeSpan.FromSeconds(30)), string.Join("; ", m.Load.Failures.Take(5)));
            Migration a = migrations[0], b = migrations[1];

            // Both dumps at once: both pre-dumps attach, freeze and start watchers concurrently.
            (int Code, TimeSpan, string Log)[] dumps = await Task.WhenAll(migrations.Select(m => Task.Run(() => m.Runner.Dump(m.Server.Pid))));
            foreach ((int code, _, string log) in dumps)
                Assert.True(code == 0, CriuRunner.Tail(log));
            Assert.All(migrations, m => Assert.True(m.Server.WaitUntilGone(TimeSpan.FromSeconds(10))));
            ConnectionKey[] bKeys = FreezeManifest.Read(b.Runner.Images).ConnectionKeys();
            Assert.Equal(Connections, bKeys.Length);

            // A comes back; its pre-resume thaws A's entries only, and keeps the programs for B.
            (int restoreA, _, string logA) = a.Runner.Restore();
            Assert.True(restoreA == 0, CriuRunner.Tail(logA));
            Assert.Contains("other connections are still frozen, programs stay attached", logA);
            long[] aAt = a.Load.Snapshot();
            Assert.True(a.Load.WaitForProgress(id => aAt[id] + 5, TimeSpan.FromSeconds(30)), string.Join("; ", a.Load.Failures.Take(5)));
            using (TcpFreezer freezer = TcpFreezer.Open(serverSide))
            {
                HashSet<ConnectionKey> frozen = freezer.ListConnections().Where(c => c.LeaseRemaining != TimeSpan.Zero).Select(c => c.Key).ToHashSet();
                Assert.True(frozen.SetEquals(bKeys), $"after A's restore {frozen.Count} connections are frozen; B has {bKeys.Length}");
            }
            // B's clients keep sending into the freeze; had anything thawed them, the host
            // (where B's sockets no longer exist) would have reset them.
            Thread.Sleep(1000);
            Assert.Empty(b.Load.Failures);

            (int restoreB, _, string logB) = b.Runner.Restore();
            Assert.True(restoreB == 0, CriuRunner.Tail(logB));
            // B's post-resume detaches, unless A's restore watcher (at SCHED_IDLE, so late on a busy machine) had the set
            // open at that moment: then whichever watcher comes last detaches once the set is idle. Either way nothing stays.
            Assert.True(logB.Contains("nothing else frozen, so detached", StringComparison.Ordinal)
                        || logB.Contains("another process has them open", StringComparison.Ordinal), CriuRunner.Tail(logB));
            var detached = System.Diagnostics.Stopwatch.StartNew();
            while (TcpFreezer.IsAttached(serverSide) && detached.Elapsed < TimeSpan.FromSeconds(20))
                Thread.Sleep(100);
            foreach (Migration m in migrations)
            {
                long[] at = m.Load.Snapshot();
                Assert.True(m.Load.WaitForProgress(id => at[id] + 5, TimeSpan.FromSeconds(30)), string.Join("; ", m.Load.Failures.Take(5)));
                Assert.Empty(m.Load.Failures);
            }
            KernelState.AssertNothingLeft(network.B, serverSide);
        }
        finally
        {
            foreach (Migration m in migrations)
            {
                await m.Load.DisposeAsync();
                m.Server.Dispose();
            }
            TcpFreezer.Detach(serverSide);
        }
    }
}
