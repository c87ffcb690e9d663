using TcpFreeze.Ebpf.Interop;
using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.Criu;

/// <summary>pre-restore called in-process after an interface appeared during the copy (no CRIU run).</summary>
[Trait("Privileges", "root")]
public sealed class HookNewInterfaceTests : IDisposable
{
    private readonly TempDirectory _images = new();

    public void Dispose() => _images.Dispose();

    [RootFact]
    public void Pre_restore_covers_an_interface_that_appeared_since_the_dump_and_names_it()
    {
        using var network = TunNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B);
        ConnectionKey key = ConnectionKey.Parse($"{network.AddressB(System.Net.Sockets.AddressFamily.InterNetwork)}:8080 -> " +
                                                $"{network.AddressA(System.Net.Sockets.AddressFamily.InterNetwork)}:40000");
        var log = new StringWriter();
        var settings = new HookSettings { PinRoot = pins.Path, Lease = TimeSpan.FromSeconds(30) };
        var environment = new CriuEnvironment(CriuAction.PreRestore, "pre-restore", _images.Path, null);
        try
        {
            (int code, uint ingress, uint egress) = network.B.Run(() =>
            {
                // The dump froze the key while the TUN device was down (not there, as far as the attach could tell).
                Run.Checked("ip", "-n", network.NameB, "link", "set", network.Device, "down");
                using (TcpFreezer freezer = TcpFreezer.Attach(options))
                    freezer.Freeze([key], [], TimeSpan.FromSeconds(30));
                FreezeManifest.Create(4242, TimeSpan.FromSeconds(30), [key], []).Write(_images.Path);
                // During the copy it comes up, carrying the frozen connection's traffic.
                Run.Checked("ip", "-n", network.NameB, "link", "set", network.Device, "up");
                int code = CriuHookDispatcher.CreateTcpFreeze().Dispatch(environment, new HookContext(settings, log, Environment.ProcessId, null));
                int index = NetworkInterfaceNames.GetIndex(network.Device);
                return (code, Tc.Query(index, TcDirection.Ingress, BpfNames.TcHandle, BpfNames.TcPriority), Tc.Query(index, TcDirection.Egress, BpfNames.TcHandle, BpfNames.TcPriority));
            });
            Assert.True(code == 0, log.ToString());
            Assert.Contains($"attached to new interface {network.Device} that appeared since the dump", log.ToString());
            Assert.NotEqual(0u, ingress);
            Assert.NotEqual(0u, egress);
        }
        finally
        {
            HookStateStore.TryRemove(HookStateStore.RestoreStatePath(Environment.ProcessId));
            TcpFreezer.Detach(options);
        }
    }
}
