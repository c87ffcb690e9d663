using System.ComponentModel;
using BenchmarkDotNet.Attributes;

namespace TcpFreeze.Benchmarks;

/// <summary>
/// TcpFreeze's lock and unlock measured the way the iptables and nft methods are (one
/// operation per iteration, lock and unlock apart), so the comparison table can divide
/// like by like: <c>Freeze(all)</c> and <c>Thaw(all)</c>, one batch call each, on a
/// freezer attached in the namespace. <see cref="FreezeThawBenchmarks"/> measures the
/// same calls, and the one-per-key ones, many times per iteration.
/// </summary>
[Description("TcpFreeze: Freeze(all) / Thaw(all), one batch call each")]
[Config(typeof(ShortSingleOperationConfig))]
public class TcpFreezeLockCostBenchmarks : LockCostBenchmarks
{
    private TcpFreezer? _freezer;

    protected override int[] FullConnectionCounts => [1, 100, 1_500, 10_000, 100_000];

    protected override string NamespacePurpose => "tcpfreeze";

    protected override int EntriesPerConnection => 1;

    private TcpFreezer Freezer => _freezer ?? throw new InvalidOperationException("Prepare has not run");

    protected override void Prepare()
    {
        _freezer = TcpFreezer.Attach(Namespace.Options);
        // Compiles the calls before the first measured one (a smoke run has no warm-up).
        LockAll();
        UnlockAll();
    }

    protected override void Release() => _freezer?.Dispose();

    protected override void LockAll() => Freezer.Freeze(Keys, lease: Lease.Forever);

    protected override void UnlockAll() => Freezer.Thaw(Keys);

    protected override void FastLock() => LockAll();

    protected override void FastUnlock() => UnlockAll();

    protected override int CountEntries() => Freezer.ListConnections().Count;
}
