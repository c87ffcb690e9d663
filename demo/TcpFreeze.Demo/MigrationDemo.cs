using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using TcpFreeze.Tests.Criu;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Demo;

/// <summary>
/// Part two of the demo: a real CRIU 4.2.1 dump and restore of an echo server holding
/// busy connections, once with no network lock at all (CRIU's --network-lock skip, the
/// unsafe floor), once with the TcpFreeze hook as installed by default (it attaches at
/// pre-dump and detaches after the restore), and once on the fast path that
/// `scripts/install.sh --with-systemd` sets up (programs attached beforehand, the hook's
/// resident agent taking each step), side by side.
/// </summary>
internal static class MigrationDemo
{
    public static async Task<(string Method, int Survived, int Total, TimeSpan Downtime)[]> RunAsync(string hook, int connections)
    {
        string criu = CriuFixture.FindCriu();
        var results = new List<(string, int, int, TimeSpan)>();
        foreach ((string method, bool useHook, bool fast) in new[]
                 {
                     ("no lock (--network-lock skip)", false, false),
                     ("TcpFreeze hook", true, false),
                     ("TcpFreeze hook, fast path (attached beforehand, the agent)", true, true),
                 })
        {
            Console.WriteLine($"\n== Migrating an echo server with {connections} busy connections, {method}");
            results.Add(await MigrateOnceAsync(criu, hook, connections, method, useHook, fast));
        }
        return [.. results];
    }

    private static async Task<(string, int, int, TimeSpan)> MigrateOnceAsync(string criu, string hook, int connections, string method, bool useHook, bool fast)
    {
        using var agent = new TcpFreeze.Migration.BenchAgent();
        string work = Directory.CreateTempSubdirectory("tcpfreeze-demo-").FullName;
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        var endpoint = new IPEndPoint(network.AddressB(AddressFamily.InterNetwork), 7000);
        using DumpableServer server = EchoServer.Start(network.NameB, work, endpoint);
        await using ClientLoad load = ClientLoad.Echo(network.A, endpoint, connections, TimeSpan.FromMilliseconds(50));
        try
        {
            if (!load.WaitForProgress(_ => 3, TimeSpan.FromSeconds(30)))
                throw new InvalidOperationException("the clients did not get going");
            Console.WriteLine($"   {connections} clients are sending numbered messages; each reply is checked (exactly once, in order)");
            var runner = new CriuRunner(criu, hook, network.NameB, work, pins.Path) { NetworkLockWithoutHook = "skip" };
            runner.Environment["TCPFREEZE_AGENT_SOCKET"] = ""; // no agent unless this run starts one
            if (fast)
            {
                using (TcpFreezer.Attach(pins.Options(network.B)))
                {
                }
                runner.Environment["TCPFREEZE_KEEP_ATTACHED"] = "true";
                runner.Environment["TCPFREEZE_AGENT_SOCKET"] = agent.StartIn(network.NameB, hook);
            }

            var clock = Stopwatch.StartNew();
            (int dumpCode, TimeSpan dump, string dumpLog) = runner.Dump(server.Pid, useHook);
            if (dumpCode != 0)
                throw new InvalidOperationException($"criu dump failed:\n{CriuRunner.Tail(dumpLog)}");
            if (!server.WaitUntilGone(TimeSpan.FromSeconds(10)))
                throw new InvalidOperationException("the dumped server did not go away");
            (int restoreCode, TimeSpan restore, string restoreLog) = runner.Restore(useHook);
            TimeSpan downtime = clock.Elapsed;
            if (restoreCode != 0)
                throw new InvalidOperationException($"criu restore failed:\n{CriuRunner.Tail(restoreLog)}");
            Console.WriteLine($"   criu dump {dump.TotalMilliseconds:F0} ms, restore {restore.TotalMilliseconds:F0} ms, downtime (dump start to restore end) {downtime.TotalMilliseconds:F0} ms");
            foreach (string line in (dumpLog + restoreLog).Split('\n').Where(l => l.StartsWith("tcpfreeze-hook:", StringComparison.Ordinal)))
                Console.WriteLine($"   {line}");

            long[] atRestore = load.Snapshot();
            load.WaitForProgress(id => atRestore[id] + 3, TimeSpan.FromSeconds(useHook ? 30 : 10));
            int survived = load.Connections.Count(c => c.Failure is null && c.Replies >= atRestore[c.Id] + 3);
            int silent = connections - survived - load.Failures.Count;
            Console.WriteLine($"   {survived}/{connections} connections came back intact; {load.Failures.Count} were reset or broken" +
                              (load.Failures.Count > 0 ? $" (e.g. {load.Failures[0]})" : "") +
                              (silent > 0 ? $"; {silent} still hang (their data was lost while no socket existed)" : ""));
            return (method, survived, connections, downtime);
        }
        finally
        {
            TcpFreezer.Detach(pins.Options(network.B));
            Directory.Delete(work, recursive: true);
        }
    }
}
