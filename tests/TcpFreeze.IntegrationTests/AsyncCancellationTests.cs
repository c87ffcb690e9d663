using System.Diagnostics;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>The asynchronous calls and their cancellation (issue 22, item 3).</summary>
[Trait("Privileges", "root")]
public sealed class AsyncCancellationTests
{
    private static ConnectionKey Key(int i) => ConnectionKey.Parse($"198.18.0.1:{3000 + i}", "198.18.0.2:5000");

    [RootFact]
    public async Task A_freeze_waiting_for_a_held_pin_lock_ends_at_cancellation_and_freezes_nothing()
    {
        using var network = TestNetwork.Create("tfec");
        using var pins = new PinRoot("tfec");
        FreezerOptions options = pins.Options(network.B) with { LockTimeout = TimeSpan.FromSeconds(60) };
        try
        {
            using TcpFreezer freezer = await TcpFreezer.AttachAsync(options);
            using var cancellation = new CancellationTokenSource();
            Task<FreezeResult> freezing;
            var waited = Stopwatch.StartNew();
            // Another holder of the lock (a descriptor of its own, as another process would have).
            using (PinLock.Acquire(options.PinRoot, TimeSpan.FromSeconds(5)))
            {
                freezing = freezer.FreezeAsync([Key(1)], cancellationToken: cancellation.Token);
                await Task.Delay(200);
                Assert.False(freezing.IsCompleted, "the freeze did not wait for the held lock");
                cancellation.Cancel();
                await Assert.ThrowsAnyAsync<OperationCanceledException>(() => freezing);
            }
            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(10), $"cancellation took {waited.Elapsed}, not the moment of the cancel");
            Assert.Empty(freezer.ListConnections());

            // Once the lock is free the same calls complete.
            FreezeResult frozen = await freezer.FreezeAsync([Key(1)], lease: TimeSpan.FromSeconds(30));
            Assert.Equal(1, frozen.ConnectionsFrozen);
            ThawResult thawed = await freezer.ThawAsync([Key(1)]);
            Assert.Equal(1, thawed.ConnectionsThawed);
        }
        finally
        {
            await TcpFreezer.DetachAsync(options);
        }
    }

    [RootFact]
    public async Task A_call_cancelled_before_it_starts_changes_nothing()
    {
        using var network = TestNetwork.Create("tfec");
        using var pins = new PinRoot("tfec");
        FreezerOptions options = pins.Options(network.B);
        try
        {
            using TcpFreezer freezer = TcpFreezer.Attach(options);
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => freezer.FreezeAsync([Key(2)], cancellationToken: new CancellationToken(canceled: true)));
            Assert.Empty(freezer.ListConnections());
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }
}
