using System.Net;
using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.Criu;

/// <summary>
/// What the restore side does when what it finds is not what the dump left: a manifest
/// naming other processes' sockets, or the dump's pins gone (deleted, or bpffs unmounted).
/// </summary>
public sealed class RestoreSafetyTests(CriuFixture criu) : CriuTest("tcpfreeze-criu-safety-")
{
    private const int Connections = 40;

    private static void DumpAndWait(BusyEchoServer busy)
    {
        (int code, _, string log) = busy.Runner.Dump(busy.Server.Pid);
        Assert.True(code == 0, CriuRunner.Tail(log));
        Assert.True(busy.Server.WaitUntilGone(TimeSpan.FromSeconds(10)), "the dumped server's PID did not go away");
    }

    /// <summary>
    /// The rule for a manifest that names what the restore does not restore. The restore's
    /// freeze is just in time: it holds only sockets in repair mode or absent, so a listed endpoint
    /// that another process's live sockets use (or a connection nobody has) holds none of that
    /// traffic, and the restore goes on. Only a live socket with the very 4-tuple of a listed
    /// connection is refused, naming the process that holds it: the restore would collide with it.
    /// (Before the just-in-time freeze, a listed endpoint of another server froze its SYNs and was refused.)
    /// </summary>
    [RootFact]
    public async Task A_manifest_naming_other_processes_sockets_never_holds_their_traffic_and_an_exact_collision_is_refused_naming_the_holder()
    {
        await using var busy = BusyEchoServer.Start(criu, _work, Connections);
        DumpAndWait(busy);
        FreezeManifest dumped = FreezeManifest.Read(busy.Runner.Images);

        // Another server in the same namespace, with clients of its own: unrelated traffic.
        string otherWork = Directory.CreateDirectory(Path.Combine(_work, "other")).FullName;
        var otherEndpoint = new IPEndPoint(busy.Network.AddressB(System.Net.Sockets.AddressFamily.InterNetwork), 7100);
        using DumpableServer other = EchoServer.Start(busy.Network.NameB, otherWork, otherEndpoint);
        await using ClientLoad unrelated = ClientLoad.Echo(busy.Network.A, otherEndpoint, 3, TimeSpan.FromMilliseconds(25));
        Assert.True(unrelated.WaitForProgress(_ => 3, TimeSpan.FromSeconds(20)), string.Join("; ", unrelated.Failures));
        ClientLoad.Connection first = unrelated.Connections[0];
        var unrelatedKey = new ConnectionKey((IPEndPoint)first.Socket.RemoteEndPoint!, (IPEndPoint)first.Socket.LocalEndPoint!); // from B's side

        (dumped with { Connections = [.. dumped.Connections, unrelatedKey.ToString()] }).Write(busy.Runner.Images);
        HashSet<ConnectionKey> before = FrozenKeys(busy.ServerSide);
        (int code, _, string log) = busy.Runner.Restore();
        Assert.NotEqual(0, code);
        Assert.Contains("tcpfreeze-hook: pre-restore failed:", log);
        Assert.Contains("live sockets of this network namespace already are", log);
        Assert.Contains($"{otherEndpoint.Address}:{otherEndpoint.Port}", log);
        Assert.Contains($"held by PID {other.Pid}", log);
        Assert.False(busy.Server.IsRunning, "CRIU restored the server although the hook refused");
        Assert.Equal(before, FrozenKeys(busy.ServerSide));
        long[] at = unrelated.Snapshot();
        Assert.True(unrelated.WaitForProgress(id => at[id] + 3, TimeSpan.FromSeconds(10)), "the unrelated connections stopped: " + string.Join("; ", unrelated.Failures));

        // The other server's endpoint, and a connection no socket uses (nothing restores it either),
        // in the manifest: frozen just in time, they hold nothing that lives, and pre-resume thaws them.
        var phantom = ConnectionKey.Parse($"{busy.Network.AddressB(System.Net.Sockets.AddressFamily.InterNetwork)}:7200 -> {busy.Network.AddressA(System.Net.Sockets.AddressFamily.InterNetwork)}:40000");
        (dumped with { Connections = [.. dumped.Connections, phantom.ToString()], Endpoints = [.. dumped.Endpoints, $"0.0.0.0:{otherEndpoint.Port}"] })
            .Write(busy.Runner.Images);
        (int restoreCode, _, string restoreLog) = busy.Runner.Restore();
        Assert.True(restoreCode == 0, CriuRunner.Tail(restoreLog));
        Assert.Contains($"pre-restore: froze {Connections + 1} connections", restoreLog);
        busy.AssertEveryConnectionFlows(3, TimeSpan.FromSeconds(30), "after the restore");
        long[] now = unrelated.Snapshot();
        Assert.True(unrelated.WaitForProgress(id => now[id] + 3, TimeSpan.FromSeconds(10)), string.Join("; ", unrelated.Failures));
        Assert.Empty(unrelated.Failures);
        KernelState.AssertNothingLeft(busy.Network.B, busy.ServerSide);
    }

    [RootFact]
    public async Task Pins_deleted_between_dump_and_restore_are_reported_and_the_restore_freezes_again_from_the_manifest()
    {
        await using var busy = BusyEchoServer.Start(criu, _work, Connections);
        DumpAndWait(busy);
        string pinDirectory = TcpFreezer.GetPinDirectory(busy.ServerSide);
        foreach (string pin in Directory.EnumerateFiles(pinDirectory))
            File.Delete(pin);
        Directory.Delete(pinDirectory);

        (int code, _, string log) = busy.Runner.Restore();
        Assert.True(code == 0, CriuRunner.Tail(log));
        Assert.Contains($"the dump's pins under {pinDirectory} are gone", log);
        Assert.Contains($"pre-restore: froze {Connections} connections", log);
        // The programs the dump attached stayed, and their maps still held the freeze
        // until the restore replaced them: nothing was lost.
        busy.AssertEveryConnectionFlows(3, TimeSpan.FromSeconds(30), "after the restore");
        KernelState.AssertNothingLeft(busy.Network.B, busy.ServerSide);
    }

    [RootFact]
    public async Task With_bpffs_unmounted_between_dump_and_restore_the_restore_says_the_pins_are_gone_and_freezes_again()
    {
        await using var busy = BusyEchoServer.Start(criu, _work, Connections);
        DumpAndWait(busy);
        // The restore runs in a private mount namespace without the bpffs the dump pinned
        // into (unmounting the machine's own would disturb everything else on it).
        string unmount = Path.Combine(_work, "without-bpffs.sh");
        File.WriteAllText(unmount, """
            #!/bin/sh
            # Runs its arguments with every bpffs on /sys/fs/bpf unmounted (bounded: at most 8 stacked mounts).
            for i in 1 2 3 4 5 6 7 8; do
              mountpoint -q /sys/fs/bpf || break
              umount -l /sys/fs/bpf || exit 1
            done
            mountpoint -q /sys/fs/bpf && exit 1
            exec "$@"
            """);
        busy.Runner.Wrapper.AddRange(["unshare", "--mount", "--propagation", "private", "sh", unmount]);

        (int code, _, string log) = busy.Runner.Restore();
        Assert.True(code == 0, CriuRunner.Tail(log));
        Assert.Contains("are gone (bpffs unmounted or the pins deleted after the dump", log);
        busy.AssertEveryConnectionFlows(3, TimeSpan.FromSeconds(30), "after the restore");
        // In the machine's bpffs the dump's pins are still there, with programs no longer
        // attached (the restore replaced them); their entries end with the lease, and
        // 'tcpfreeze detach' removes them (BusyEchoServer's dispose does).
        Assert.True(TcpFreezer.IsAttached(busy.ServerSide));
        busy.Network.B.Run(() =>
        {
            Assert.Equal(0u, TcpFreeze.Ebpf.Interop.Xdp.Query(TcpFreeze.Ebpf.Interop.NetworkInterfaceNames.GetIndex(TestNetwork.Interface)).ProgramId);
        });
    }

    private static HashSet<ConnectionKey> FrozenKeys(FreezerOptions options)
    {
        using TcpFreezer freezer = TcpFreezer.Open(options);
        return freezer.ListConnections().Select(c => c.Key).ToHashSet();
    }
}
