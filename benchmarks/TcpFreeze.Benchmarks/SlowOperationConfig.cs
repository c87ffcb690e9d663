using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Filters;
using BenchmarkDotNet.Jobs;

namespace TcpFreeze.Benchmarks;

/// <summary>
/// For operations of milliseconds to minutes (one lock or unlock of N connections through
/// iptables or nft): one invocation per iteration, so <c>[IterationSetup]</c> and
/// <c>[IterationCleanup]</c> run around every measured operation; no pilot stage and no
/// outlier removal (<see cref="RunStrategy.Monitoring"/>); a few iterations. It is a
/// mutator: it overrides the run's job (Program.cs) rather than adding a second one.
/// </summary>
public class SlowOperationConfig : ManualConfig
{
    public SlowOperationConfig() : this(iterations: 5, warmups: 1)
    {
    }

    protected SlowOperationConfig(int iterations, int warmups)
        => AddJob(Job.Default
            .WithStrategy(RunStrategy.Monitoring)
            .WithInvocationCount(1)
            .WithUnrollFactor(1)
            .WithWarmupCount(BenchSettings.Smoke ? 0 : warmups)
            .WithIterationCount(BenchSettings.Smoke ? 1 : iterations)
            .AsMutator())
        .AddFilter(new SimpleFilter(LockCostBenchmarks.IsInBudget));
}

/// <summary>
/// <see cref="SlowOperationConfig"/> for operations that take up to two minutes (CRIU-style
/// iptables, one process per rule): three iterations and no warm-up, the first measured
/// operation being no colder than the later ones (the binaries are in the page cache after
/// the namespace set-up).
/// </summary>
public sealed class VerySlowOperationConfig : SlowOperationConfig
{
    public VerySlowOperationConfig() : base(iterations: 3, warmups: 0)
    {
    }
}

/// <summary>
/// <see cref="SlowOperationConfig"/> for single operations of microseconds to milliseconds
/// (TcpFreeze's batch calls): more warm-ups and iterations, which cost next to nothing.
/// </summary>
public sealed class ShortSingleOperationConfig : SlowOperationConfig
{
    public ShortSingleOperationConfig() : base(iterations: 15, warmups: 3)
    {
    }
}
