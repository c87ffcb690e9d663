using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.Criu;

/// <summary>pre-restore called in-process after the dump's lease ended (no CRIU run).</summary>
[Trait("Privileges", "root")]
public sealed class HookLapsedLeaseTests : IDisposable
{
    private readonly TempDirectory _images = new();

    public void Dispose() => _images.Dispose();

    [RootFact]
    public void A_restore_after_the_lease_ended_says_which_connections_may_have_been_reset_and_how_to_tell()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B);
        ConnectionKey key = ConnectionKey.Parse("198.18.0.1:8080 -> 198.18.0.2:40000");
        var log = new StringWriter();
        var settings = new HookSettings { PinRoot = pins.Path, Lease = TimeSpan.FromSeconds(30) };
        var environment = new CriuEnvironment(CriuAction.PreRestore, "pre-restore", _images.Path, null);
        try
        {
            int code = network.B.Run(() =>
            {
                // The dump froze the key in this namespace; its short lease has ended by the restore.
                using (TcpFreezer freezer = TcpFreezer.Attach(options))
                    freezer.Freeze([key], [], TimeSpan.FromMilliseconds(1));
                FreezeManifest.Create(4242, TimeSpan.FromMilliseconds(1), [key], []).Write(_images.Path);
                Thread.Sleep(50);
                using (TcpFreezer freezer = TcpFreezer.Open(options))
                    freezer.Thaw([key], [], kick: false); // the lease ended: the entry no longer holds
                return CriuHookDispatcher.CreateTcpFreeze().Dispatch(environment, new HookContext(settings, log, Environment.ProcessId, null));
            });
            Assert.True(code == 0, log.ToString());
            Assert.Contains("1 of its 1 entries were no longer frozen: their lease ended, or someone thawed them, since the dump.", log.ToString());
            // What is true: only a connection whose peer sent a segment during the gap was reset.
            Assert.Contains("a connection whose peer sent nothing in that gap (idle, or backing off) is intact, one whose peer did is reset", log.ToString());
            Assert.DoesNotContain("Those connections were reset", log.ToString());
            Assert.DoesNotContain("may have had", log.ToString());
        }
        finally
        {
            HookStateStore.TryRemove(HookStateStore.RestoreStatePath(Environment.ProcessId));
            TcpFreezer.Detach(options);
        }
    }
}
