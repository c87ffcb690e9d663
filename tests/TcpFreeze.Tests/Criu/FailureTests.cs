using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.Criu;

/// <summary>CRIU runs that fail part-way: nothing may stay frozen longer than its lease, and nothing restores unlocked.</summary>
[Collection("criu")]
[Trait("Privileges", "root")]
[Trait("Needs", "criu")]
public sealed class FailureTests(CriuFixture criu) : IDisposable
{
    private const int Connections = 50;
    private readonly string _work = Directory.CreateTempSubdirectory("tcpfreeze-criu-fail-").FullName;

    private (TestNetwork Network, PinRoot Pins, DumpableServer Server, IPEndPoint Endpoint) StartServer()
    {
        var network = TestNetwork.Create();
        var pins = new PinRoot();
        var endpoint = new IPEndPoint(network.AddressB(AddressFamily.InterNetwork), 7000);
        string script = Path.Combine(_work, "echo_server.py");
        File.WriteAllText(script, MigrationTests.EchoServer);
        var server = DumpableServer.Start(network.NameB, _work, "python3", script, endpoint.Address.ToString(), "7000");
        for (int i = 0; i < 500 && !server.Log.Contains("listening"); i++)
            Thread.Sleep(10);
        return (network, pins, server, endpoint);
    }

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
        (TestNetwork network, PinRoot pins, DumpableServer server, IPEndPoint endpoint) = StartServer();
        using (network)
        using (pins)
        using (server)
        {
            await using ClientLoad load = ClientLoad.Echo(network.A, endpoint, Connections, TimeSpan.FromMilliseconds(25));
            Assert.True(load.WaitForProgress(_ => 3, TimeSpan.FromSeconds(30)));
            var runner = new CriuRunner(criu.Criu, criu.Hook, network.NameB, _work, pins.Path);
            runner.ExtraScripts.Add(FailingPreDumpScript());

            (int code, _, string log) = runner.Dump(server.Pid);
            Assert.NotEqual(0, code);
            Assert.Contains("tcpfreeze-hook: pre-dump: froze 50 connections", log);
            Assert.True(server.IsRunning);

            long[] afterFailure = load.Snapshot();
            // The watcher sees CRIU end while the server still runs and thaws after a short grace period.
            Assert.True(load.WaitForProgress(id => afterFailure[id] + 3, TimeSpan.FromSeconds(20)), "connections did not flow again after the failed dump");
            Assert.Empty(load.Failures);
            using TcpFreezer freezer = TcpFreezer.Open(pins.Options(network.B));
            Assert.Empty(freezer.ListConnections());
            Assert.Empty(freezer.ListEndpoints());
            TcpFreezer.Detach(pins.Options(network.B));
        }
    }

    [RootFact]
    public async Task A_dump_with_leave_running_thaws_as_soon_as_criu_ends_and_the_server_keeps_every_connection()
    {
        (TestNetwork network, PinRoot pins, DumpableServer server, IPEndPoint endpoint) = StartServer();
        using (network)
        using (pins)
        using (server)
        {
            await using ClientLoad load = ClientLoad.Echo(network.A, endpoint, Connections, TimeSpan.FromMilliseconds(25));
            Assert.True(load.WaitForProgress(_ => 3, TimeSpan.FromSeconds(30)));
            var runner = new CriuRunner(criu.Criu, criu.Hook, network.NameB, _work, pins.Path);
            runner.ExtraDumpArguments.Add("--leave-running");

            (int code, _, string log) = runner.Dump(server.Pid);
            Assert.True(code == 0, CriuRunner.Tail(log));
            Assert.Contains("tcpfreeze-hook: post-dump:", log);
            Assert.True(server.IsRunning, "--leave-running left no running server");

            long[] afterDump = load.Snapshot();
            Assert.True(load.WaitForProgress(id => afterDump[id] + 3, TimeSpan.FromSeconds(20)), "connections did not flow again after a --leave-running dump");
            Assert.Empty(load.Failures);
            using (TcpFreezer freezer = TcpFreezer.Open(pins.Options(network.B)))
                Assert.Empty(freezer.ListConnections());
            Assert.False(Directory.EnumerateFiles(TcpFreeze.CriuHooks.DumpWatcher.RuntimeDirectory, $"dump-*-{server.Pid}.json").Any(), "the watcher left its state file");
            TcpFreezer.Detach(pins.Options(network.B));
        }
    }

    [RootFact]
    public async Task With_the_dump_watcher_killed_a_failed_dump_stays_frozen_only_until_the_lease_ends()
    {
        (TestNetwork network, PinRoot pins, DumpableServer server, IPEndPoint endpoint) = StartServer();
        using (network)
        using (pins)
        using (server)
        {
            await using ClientLoad load = ClientLoad.Echo(network.A, endpoint, Connections, TimeSpan.FromMilliseconds(25));
            Assert.True(load.WaitForProgress(_ => 3, TimeSpan.FromSeconds(30)));
            var runner = new CriuRunner(criu.Criu, criu.Hook, network.NameB, _work, pins.Path);
            runner.Environment["TCPFREEZE_LEASE_SECONDS"] = "6";
            runner.ExtraScripts.Add(FailingPreDumpScript());

            (int code, _, string log) = runner.Dump(server.Pid);
            Assert.NotEqual(0, code);
            int watcher = int.Parse(Regex.Match(log, @"dump watcher PID (\d+)").Groups[1].Value);
            Process.GetProcessById(watcher).Kill(); // a fault: the watcher dies before it can thaw
            var clock = Stopwatch.StartNew();

            long[] frozenAt = load.Snapshot();
            Thread.Sleep(TimeSpan.FromSeconds(3)); // well inside the 6-second lease: must still be frozen
            Assert.True(load.Snapshot().Zip(frozenAt).All(p => p.First <= p.Second + 1), "connections flowed before the lease ended");
            Assert.True(load.WaitForProgress(id => frozenAt[id] + 3, TimeSpan.FromSeconds(30)), "connections did not flow again after the lease");
            Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(4), $"traffic resumed after {clock.Elapsed}, before the lease could have ended");
            Assert.Empty(load.Failures);
            TcpFreezer.Detach(pins.Options(network.B));
        }
    }

    [RootTheory]
    [InlineData("missing")]
    [InlineData("corrupt")]
    public void A_restore_without_a_readable_manifest_fails_clearly_and_freezes_nothing(string damage)
    {
        (TestNetwork network, PinRoot pins, DumpableServer server, IPEndPoint endpoint) = StartServer();
        using (network)
        using (pins)
        using (server)
        {
            var clients = Enumerable.Range(0, 5).Select(_ =>
            {
                Socket s = TcpPair.NewClient(network.A, AddressFamily.InterNetwork);
                s.Connect(endpoint);
                return s;
            }).ToList();
            try
            {
                var runner = new CriuRunner(criu.Criu, criu.Hook, network.NameB, _work, pins.Path);
                (int dumpCode, _, string dumpLog) = runner.Dump(server.Pid);
                Assert.True(dumpCode == 0, CriuRunner.Tail(dumpLog));
                Assert.True(server.WaitUntilGone(TimeSpan.FromSeconds(10)));
                string manifest = Path.Combine(runner.Images, FreezeManifest.FileName);
                if (damage == "missing")
                    File.Delete(manifest);
                else
                    File.WriteAllText(manifest, "{ \"version\": 1, \"connections\": [\"not an endpoint\"");

                FreezerOptions options = pins.Options(network.B);
                List<FrozenConnection> before;
                using (TcpFreezer freezer = TcpFreezer.Open(options))
                    before = freezer.ListConnections().ToList();

                (int code, _, string log) = runner.Restore();
                Assert.NotEqual(0, code);
                Assert.Contains("tcpfreeze-hook: pre-restore failed:", log);
                Assert.Contains(damage == "missing" ? "there is no tcpfreeze-manifest.json" : "is corrupt", log);
                Assert.False(server.IsRunning, "CRIU restored the server without a lock");

                using (TcpFreezer freezer = TcpFreezer.Open(options))
                    Assert.Equal(before.Select(c => c.Key).ToHashSet(), freezer.ListConnections().Select(c => c.Key).ToHashSet());
                TcpFreezer.Detach(options);
            }
            finally
            {
                clients.ForEach(c => c.Dispose());
            }
        }
    }

    public void Dispose() => Directory.Delete(_work, recursive: true);
}
