using System.Net;
using System.Net.Sockets;
using TcpFreeze.Tests.Infrastructure;
using Xunit.Abstractions;

namespace TcpFreeze.Tests.Criu;

/// <summary>
/// Real CRIU 4.2.1 dumps and restores of a server holding live connections, with the
/// TcpFreeze hook doing the network lock (--network-lock skip).
/// </summary>
public sealed class MigrationTests(CriuFixture criu, ITestOutputHelper output) : CriuTest("tcpfreeze-criu-")
{
    private const int Connections = 200;
    private static readonly TimeSpan Pause = TimeSpan.FromMilliseconds(25);


    private DumpableServer StartEchoServer(string ns, IPEndPoint endpoint) => EchoServer.Start(ns, _work, endpoint);

    [RootTheory]
    [InlineData(AddressFamily.InterNetwork)]
    [InlineData(AddressFamily.InterNetworkV6)]
    public async Task Echo_server_with_200_busy_connections_migrates_and_every_message_is_answered_once_in_order(AddressFamily family)
    {
        await using var busy = BusyEchoServer.Start(criu, _work, Connections, family);
        Migrate(busy.Runner, busy.Server);
        busy.AssertEveryConnectionFlows(5, TimeSpan.FromSeconds(40), "after the restore");
        KernelState.AssertNothingLeft(busy.Network.B, busy.ServerSide);
        Assert.False(Directory.Exists(TcpFreezer.GetPinDirectory(busy.ServerSide)), "the hook left its pin directory behind");
    }

    [RootFact]
    public async Task Pre_attached_with_keep_attached_the_hook_only_opens_pins_and_leaves_the_programs_in_place()
    {
        await using var busy = BusyEchoServer.Start(criu, _work, Connections);
        string config = Path.Combine(_work, "criu-hook.conf");
        File.WriteAllText(config, "keep-attached = true\n");
        busy.Runner.Environment["TCPFREEZE_HOOK_CONFIG"] = config;
        using (TcpFreezer.Attach(busy.ServerSide))
        {
        }
        uint programId = busy.Network.B.Run(() => TcpFreeze.Ebpf.Interop.Xdp.Query(TcpFreeze.Ebpf.Interop.NetworkInterfaceNames.GetIndex(TestNetwork.Interface)).ProgramId);

        Migrate(busy.Runner, busy.Server);
        busy.AssertEveryConnectionFlows(5, TimeSpan.FromSeconds(40), "after the restore");
        Assert.Equal(programId, busy.Network.B.Run(() => TcpFreeze.Ebpf.Interop.Xdp.Query(TcpFreeze.Ebpf.Interop.NetworkInterfaceNames.GetIndex(TestNetwork.Interface)).ProgramId));
        using TcpFreezer freezer = TcpFreezer.Open(busy.ServerSide);
        Assert.Empty(freezer.ListConnections());
        Assert.Empty(freezer.ListEndpoints());
    }

    [RootFact]
    public async Task With_tc_ingress_beside_a_foreign_xdp_program_a_migration_keeps_every_connection_and_leaves_that_program_alone()
    {
        await using var busy = BusyEchoServer.Start(criu, _work, Connections);
        using ForeignXdpProgram foreign = ForeignXdpProgram.Counting();
        foreign.AttachTo(busy.Network.B, TestNetwork.Interface);
        busy.Runner.Environment["TCPFREEZE_INGRESS"] = "tc";
        ulong seen = foreign.Packets;

        Migrate(busy.Runner, busy.Server);
        busy.AssertEveryConnectionFlows(5, TimeSpan.FromSeconds(40), "after the restore");
        Assert.Equal(foreign.Id, ForeignXdpProgram.AttachedId(busy.Network.B, TestNetwork.Interface));
        Assert.True(foreign.Packets > seen + Connections, $"the foreign XDP program saw only {foreign.Packets - seen} packets during the migration");
        KernelState.AssertNothingLeft(busy.Network.B, busy.ServerSide);
    }

    [RootFact]
    public async Task Nginx_with_keep_alive_clients_migrates_and_every_request_is_answered_once_in_order()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        var endpoint = new IPEndPoint(network.AddressB(AddressFamily.InterNetwork), 8080);
        using DumpableServer nginx = NginxServer.Start(network.NameB, _work, endpoint);
        await using ClientLoad load = ClientLoad.Http(network.A, endpoint, Connections, Pause);
        Assert.True(load.WaitForProgress(_ => 3, TimeSpan.FromSeconds(30)), string.Join("; ", load.Failures.Take(5)) + NginxServer.ErrorLog(_work));

        var runner = new CriuRunner(criu.Criu, criu.Hook, network.NameB, _work, pins.Path);
        Migrate(runner, nginx);

        long[] atRestore = load.Snapshot();
        Assert.True(load.WaitForProgress(id => atRestore[id] + 5, TimeSpan.FromSeconds(40)),
            $"not every connection came back: {string.Join("; ", load.Failures.Take(5))}");
        Assert.Empty(load.Failures);
        KernelState.AssertNothingLeft(network.B, pins.Options(network.B));
    }

    [RootFact]
    public async Task Across_two_hosts_the_restore_side_attaches_from_the_manifest_and_every_connection_survives()
    {
        using var hosts = BridgedHosts.Create();
        using var pins = new PinRoot();
        var endpoint = new IPEndPoint(hosts.Service, 7000);
        using DumpableServer server = StartEchoServer(hosts.HostA, endpoint);
        await using ClientLoad load = ClientLoad.Echo(NetworkNamespace.Named(hosts.Client), endpoint, Connections, Pause);
        Assert.True(load.WaitForProgress(_ => 3, TimeSpan.FromSeconds(30)), string.Join("; ", load.Failures.Take(5)));
        var runner = new CriuRunner(criu.Criu, criu.Hook, hosts.HostA, _work, pins.Path);
        FreezerOptions hostA = pins.Options(NetworkNamespace.Named(hosts.HostA)), hostB = pins.Options(NetworkNamespace.Named(hosts.HostB));
        try
        {
            long dumpStart = System.Diagnostics.Stopwatch.GetTimestamp();
            string Ms(long ticks) => System.Diagnostics.Stopwatch.GetElapsedTime(dumpStart, ticks).TotalMilliseconds.ToString("F0");
            (int dumpCode, _, string dumpLog) = runner.Dump(server.Pid);
            long dumpEnd = System.Diagnostics.Stopwatch.GetTimestamp();
            Assert.True(dumpCode == 0, $"criu dump failed:\n{CriuRunner.Tail(dumpLog)}");
            Assert.True(server.WaitUntilGone(TimeSpan.FromSeconds(10)));
            Assert.False(TcpFreezer.IsAttached(hostB), "nothing may be attached on hostB before its restore");
            hosts.RemoveServiceFromHostA();
            runner.ExtraScripts.Add(hosts.WriteAddressMoveScript(_work));

            long restoreStart = System.Diagnostics.Stopwatch.GetTimestamp();
            (int restoreCode, _, string restoreLog) = runner.Restore(netns: hosts.HostB);
            long restoreEnd = System.Diagnostics.Stopwatch.GetTimestamp();
            Assert.True(restoreCode == 0, $"criu restore on hostB failed:\n{CriuRunner.Tail(restoreLog)}");
            Assert.Contains("tcpfreeze-hook: pre-restore: froze 200 connections", restoreLog);

            long[] atRestore = load.Snapshot();
            Assert.True(load.WaitForProgress(id => atRestore[id] + 5, TimeSpan.FromSeconds(40)),
                $"not every connection came back on hostB: {string.Join("; ", load.Failures.Take(5))}\n" +
                $"dump {Ms(dumpStart)}..{Ms(dumpEnd)}, restore {Ms(restoreStart)}..{Ms(restoreEnd)}, failures at " +
                string.Join(",", load.Connections.Where(c => c.Failure is not null).Select(c => Ms(c.FailureTicks)).Take(10)) + " ms\n" +
                $"hostA: {DescribeFrozen(hostA)}; hostB: {DescribeFrozen(hostB)}\n" +
                string.Join("\n", (dumpLog + restoreLog).Split('\n').Where(l => l.Contains("tcpfreeze-hook") || l.Contains("Error") || l.Contains("action script"))));
            Assert.Empty(load.Failures);
            KernelState.AssertNothingLeft(NetworkNamespace.Named(hosts.HostB), hostB);
            // hostA keeps its entries until their lease ends (no process there can thaw them).
            using TcpFreezer source = TcpFreezer.Open(hostA);
            Assert.All(source.ListConnections(), c => Assert.NotNull(c.LeaseRemaining));
        }
        finally
        {
            TcpFreezer.Detach(hostA);
            TcpFreezer.Detach(hostB);
        }
    }

    private static string DescribeFrozen(FreezerOptions options)
    {
        if (!TcpFreezer.IsAttached(options))
            return "not attached";
        using TcpFreezer freezer = TcpFreezer.Open(options);
        FreezerStatistics stats = freezer.GetStatistics();
        return $"{stats.FrozenConnections} frozen, {stats.DroppedIngress} dropped in, {stats.DroppedEgress} dropped out, {stats.Passed} passed";
    }

    /// <summary>Dump with the hook, wait for the PID to be free, restore with the hook.</summary>
    private void Migrate(CriuRunner runner, DumpableServer server)
    {
        (int dumpCode, TimeSpan dumpTime, string dumpLog) = runner.Dump(server.Pid);
        Assert.True(dumpCode == 0, $"criu dump failed ({dumpCode}):\n{CriuRunner.Tail(dumpLog)}");
        Assert.Contains("tcpfreeze-hook: pre-dump: froze", dumpLog);
        Assert.True(server.WaitUntilGone(TimeSpan.FromSeconds(10)), "the dumped server's PID did not go away");
        var manifest = TcpFreeze.CriuHooks.FreezeManifest.Read(runner.Images);
        Assert.Equal(Connections, manifest.Connections.Count);

        (int restoreCode, TimeSpan restoreTime, string restoreLog) = runner.Restore();
        Assert.True(restoreCode == 0, $"criu restore failed ({restoreCode}):\n{CriuRunner.Tail(restoreLog)}");
        Assert.Contains("tcpfreeze-hook: pre-restore: froze", restoreLog);
        Assert.Contains("tcpfreeze-hook: pre-resume: thawed", restoreLog);
        Assert.True(server.IsRunning, "the restored server is not running");
        output.WriteLine($"dump {dumpTime.TotalMilliseconds:F0} ms, restore {restoreTime.TotalMilliseconds:F0} ms");
        foreach (string line in (dumpLog + restoreLog).Split('\n').Where(l => l.Contains("tcpfreeze-hook:")))
            output.WriteLine(line);
    }
}
