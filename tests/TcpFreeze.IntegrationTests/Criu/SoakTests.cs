using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using TcpFreeze.Tests.Infrastructure;
using Xunit.Abstractions;

namespace TcpFreeze.Tests.Criu;

/// <summary>
/// Repeated migrations (dump + restore with the hook) of an echo server whose clients
/// stream numbered lines on every connection the whole time, frozen or not. Each client
/// checks that every line comes back exactly once and in order, so a lost, duplicated,
/// reordered or corrupted byte fails it, as does a reset. After every cycle nothing of
/// TcpFreeze may be left: no pin, no attached program, no frozen entry, no watcher, no
/// state file, and the server holds as many descriptors as before the first cycle.
/// CI runs a short soak; scripts/soak.sh runs the long one (20 cycles, 1,500 connections)
/// with TCPFREEZE_SOAK_CYCLES, TCPFREEZE_SOAK_CONNECTIONS and TCPFREEZE_SOAK_REPORT.
/// </summary>
public sealed class SoakTests(CriuFixture criu, ITestOutputHelper output) : CriuTest("tcpfreeze-criu-soak-")
{
    private static int Setting(string name, int fallback)
        => int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.None, CultureInfo.InvariantCulture, out int value) && value > 0 ? value : fallback;

    /// <summary>What is left after a cycle, in the test's namespace and pin root (and, when the soak runs alone, machine-wide).</summary>
    private sealed record Leftovers(int ServerDescriptors, int Pins, uint XdpVeth, uint XdpLo, bool TcFilter, int StateFiles, int TcpFreezePrograms, int Maps)
    {
        public string Describe() => $"server fds {ServerDescriptors}, pins {Pins}, xdp veth0/lo {XdpVeth}/{XdpLo}, tc filter {TcFilter}, state files {StateFiles}, " +
                                    $"tf_ programs machine-wide {TcpFreezePrograms}, BPF maps machine-wide {Maps}";
    }

    [RootFact]
    public async Task Repeated_migrations_with_traffic_on_every_connection_lose_nothing_and_leave_nothing_behind()
    {
        int cycles = Setting("TCPFREEZE_SOAK_CYCLES", 4), connections = Setting("TCPFREEZE_SOAK_CONNECTIONS", 300);
        // Machine-wide counts only mean something when nothing else runs (scripts/soak.sh runs this test alone).
        bool alone = Environment.GetEnvironmentVariable("TCPFREEZE_SOAK_ALONE") == "1";
        // Every connection sends a line this often: 7,500 lines a second at 1,500 connections.
        TimeSpan interval = TimeSpan.FromMilliseconds(Math.Max(40, connections / 7.5));

        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions serverSide = pins.Options(network.B);
        var endpoint = new IPEndPoint(network.AddressB(AddressFamily.InterNetwork), 7000);
        using DumpableServer server = EchoServer.Start(network.NameB, _work, endpoint);
        await using ClientLoad load = ClientLoad.Stream(network.A, endpoint, connections, interval);
        try
        {
            Assert.True(load.WaitForProgress(_ => 3, TimeSpan.FromSeconds(60)), string.Join("; ", load.Failures.Take(5)));
            var runner = new CriuRunner(criu.Criu, criu.Hook, network.NameB, _work, pins.Path);
            Leftovers before = Measure(server.Pid, network, pins.Path);
            var report = new StringBuilder()
                .AppendLine(CultureInfo.InvariantCulture, $"| cycle | dump ms | restore ms | longest silence of a connection ms | lines checked so far | left behind |")
                .AppendLine("|---|---|---|---|---|---|");
            output.WriteLine($"soak: {cycles} cycles, {connections} connections, a line every {interval.TotalMilliseconds:F0} ms each; before: {before.Describe()}");

            for (int cycle = 1; cycle <= cycles; cycle++)
            {
                load.ResetLongestGaps();
                (int dumpCode, TimeSpan dumpTime, string dumpLog) = runner.Dump(server.Pid);
                Assert.True(dumpCode == 0, $"cycle {cycle}: criu dump failed:\n{CriuRunner.Tail(dumpLog)}");
                Assert.True(server.WaitUntilGone(TimeSpan.FromSeconds(10)), $"cycle {cycle}: the dumped server's PID did not go away");
                (int restoreCode, TimeSpan restoreTime, string restoreLog) = runner.Restore();
                Assert.True(restoreCode == 0, $"cycle {cycle}: criu restore failed:\n{CriuRunner.Tail(restoreLog)}");
                Assert.Contains($"pre-restore: froze {connections} connections", restoreLog);

                long[] at = load.Snapshot();
                Assert.True(load.WaitForProgress(id => at[id] + 5, TimeSpan.FromSeconds(60)),
                    $"cycle {cycle}: not every connection flowed after the restore: {string.Join("; ", load.Failures.Take(5))}; " +
                    $"{load.Connections.Count(c => c.Replies < at[c.Id] + 5)} still waiting");
                Assert.Empty(load.Failures);

                WaitForWatcherToEnd(dumpLog, cycle);
                Leftovers after = Measure(server.Pid, network, pins.Path);
                long lines = load.Connections.Sum(c => Interlocked.Read(ref c.Replies));
                TimeSpan silence = TimeSpan.FromTicks(load.Connections.Max(c => Interlocked.Read(ref c.LongestGapTicks)) * TimeSpan.TicksPerSecond / Stopwatch.Frequency);
                report.AppendLine(CultureInfo.InvariantCulture,
                    $"| {cycle} | {dumpTime.TotalMilliseconds:F0} | {restoreTime.TotalMilliseconds:F0} | {silence.TotalMilliseconds:F0} | {lines:N0} | {after.Describe()} |");
                output.WriteLine($"cycle {cycle}: dump {dumpTime.TotalMilliseconds:F0} ms, restore {restoreTime.TotalMilliseconds:F0} ms, longest silence {silence.TotalMilliseconds:F0} ms, {lines} lines checked; {after.Describe()}");

                Assert.True(after.Pins == 0 && after.XdpVeth == 0 && after.XdpLo == 0 && !after.TcFilter && after.StateFiles == 0,
                    $"cycle {cycle} left TcpFreeze state behind: {after.Describe()}");
                Assert.True(after.ServerDescriptors == before.ServerDescriptors, $"cycle {cycle}: the server's descriptors grew: before {before.Describe()}; now {after.Describe()}");
                if (alone)
                    Assert.True(after.TcpFreezePrograms == before.TcpFreezePrograms && after.Maps == before.Maps,
                        $"cycle {cycle}: BPF objects grew machine-wide: before {before.Describe()}; now {after.Describe()}");
            }

            string summary = $"{cycles} cycles x {connections} connections: {load.Connections.Sum(c => Interlocked.Read(ref c.Replies)):N0} lines sent and checked, " +
                             $"{load.Failures.Count} connections lost, 0 bytes lost, duplicated or reordered";
            output.WriteLine(summary);
            if (Environment.GetEnvironmentVariable("TCPFREEZE_SOAK_REPORT") is { Length: > 0 } path)
                File.WriteAllText(path, $"# Soak: repeated migrations with the hook\n\n{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, " +
                                        $"a line every {interval.TotalMilliseconds:F0} ms on each connection; before the first cycle: {before.Describe()}\n\n{report}\n{summary}\n");
        }
        finally
        {
            TcpFreezer.Detach(serverSide);
        }
    }

    /// <summary>The dump watcher of a migration ends as soon as the dumped task is gone.</summary>
    private static void WaitForWatcherToEnd(string dumpLog, int cycle)
    {
        Match watcher = Regex.Match(dumpLog, @"dump watcher PID (\d+)");
        Assert.True(watcher.Success, $"cycle {cycle}: pre-dump started no dump watcher");
        int pid = int.Parse(watcher.Groups[1].Value, CultureInfo.InvariantCulture);
        for (int i = 0; i < 500 && DumpableServer.IsAlive(pid); i++)
            Thread.Sleep(10);
        Assert.False(DumpableServer.IsAlive(pid), $"cycle {cycle}: the dump watcher (PID {pid}) still runs");
    }

    private static Leftovers Measure(int serverPid, TestNetwork network, string pinRoot)
    {
        int fds = Directory.GetFiles($"/proc/{serverPid}/fd").Length;
        int pinFiles = Directory.Exists(pinRoot) ? Directory.GetFiles(pinRoot, "*", SearchOption.AllDirectories).Count(f => !f.EndsWith(".lock", StringComparison.Ordinal)) : 0;
        (uint veth, uint lo) = network.B.Run(() => (
            TcpFreeze.Ebpf.Interop.Xdp.Query(TcpFreeze.Ebpf.Interop.NetworkInterfaceNames.GetIndex(TestNetwork.Interface)).ProgramId,
            TcpFreeze.Ebpf.Interop.Xdp.Query(TcpFreeze.Ebpf.Interop.NetworkInterfaceNames.GetIndex("lo")).ProgramId));
        bool tc = Run.Checked("tc", "-n", network.NameB, "filter", "show", "dev", TestNetwork.Interface, "egress").Contains("tf_", StringComparison.Ordinal);
        int states = Directory.Exists(CriuHooks.HookStateStore.RuntimeDirectory)
            ? Directory.GetFiles(CriuHooks.HookStateStore.RuntimeDirectory, "*.json").Count(f => Path.GetFileName(f).StartsWith("restore-", StringComparison.Ordinal) || f.EndsWith($"-{serverPid}.json", StringComparison.Ordinal))
            : 0;
        return new Leftovers(fds, pinFiles, veth, lo, tc, states, CountBpf("prog", p => p.TryGetProperty("name", out JsonElement n) && n.GetString()!.StartsWith("tf_", StringComparison.Ordinal)),
            CountBpf("map", _ => true));
    }

    /// <summary>Counts the kernel's BPF programs or maps (bpftool, JSON) that match.</summary>
    private static int CountBpf(string kind, Func<JsonElement, bool> match)
    {
        using JsonDocument list = JsonDocument.Parse(Run.Checked("bpftool", kind, "show", "--json"));
        return list.RootElement.EnumerateArray().Count(match);
    }
}
