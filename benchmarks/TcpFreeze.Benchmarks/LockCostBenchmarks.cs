using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;

namespace TcpFreeze.Benchmarks;

/// <summary>
/// The cost of locking N connections, and of unlocking them, by one method (iptables, nft),
/// inside a network namespace of the benchmark's own. Lock and unlock are measured
/// separately, one operation per iteration (the class's config must say so, see
/// <see cref="SlowOperationConfig"/>): before each measured unlock the connections are
/// locked, and after each measured lock unlocked, by the method's fastest path, outside the
/// measurement. Every iteration checks the state it leaves: N connections locked (counted
/// in the kernel's tables) after a lock, none after an unlock.
/// </summary>
[MedianColumn, MinColumn, MaxColumn]
public abstract class LockCostBenchmarks
{
    private BenchNamespace? _namespace;

    [ParamsSource(nameof(ConnectionCounts))]
    public int Connections { get; set; }

    /// <summary>The connection counts this method is measured with.</summary>
    public IEnumerable<int> ConnectionCounts => BenchSettings.Connections(FullConnectionCounts);

    /// <summary>The connection counts of a full run: those the method does in about two minutes or less.</summary>
    protected abstract int[] FullConnectionCounts { get; }

    /// <summary>
    /// The largest connection count whose unlock is measured, where unlocking grows faster
    /// than locking (a lock is still measured with every count).
    /// </summary>
    protected virtual int MaxUnlockConnections => int.MaxValue;

    /// <summary>
    /// Whether a case is in the run's time budget: the config's filter leaves out unlocks
    /// above <see cref="MaxUnlockConnections"/>.
    /// </summary>
    internal static bool IsInBudget(BenchmarkCase benchmark)
    {
        if (!typeof(LockCostBenchmarks).IsAssignableFrom(benchmark.Descriptor.Type)
            || benchmark.Descriptor.WorkloadMethod.Name != nameof(Unlock))
            return true;
        var instance = (LockCostBenchmarks)Activator.CreateInstance(benchmark.Descriptor.Type)!;
        return (int)benchmark.Parameters[nameof(Connections)] <= instance.MaxUnlockConnections;
    }

    /// <summary>A short name for the namespace (tfbench-NAME-PID).</summary>
    protected abstract string NamespacePurpose { get; }

    /// <summary>How many entries (rules, set elements) the method keeps per locked connection.</summary>
    protected abstract int EntriesPerConnection { get; }

    private protected BenchNamespace Namespace => _namespace ?? throw new InvalidOperationException("GlobalSetup has not run");

    /// <summary>The connections, from the locking host's point of view, addresses from 198.18.0.0/15.</summary>
    protected ConnectionKey[] Keys { get; private set; } = [];

    [GlobalSetup]
    public void GlobalSetup()
    {
        _namespace = new BenchNamespace(NamespacePurpose);
        try
        {
            Keys = BenchNamespace.Keys(Connections);
            Prepare();
            RequireEntries(0, "before the first lock");
        }
        catch
        {
            _namespace.Dispose();
            _namespace = null;
            throw;
        }
    }

    [GlobalCleanup]
    public void GlobalCleanup()
    {
        try
        {
            if (_namespace is not null)
                Release();
        }
        finally
        {
            _namespace?.Dispose();
            _namespace = null;
        }
    }

    [Benchmark]
    public void Lock() => LockAll();

    [Benchmark]
    public void Unlock() => UnlockAll();

    [IterationCleanup(Target = nameof(Lock))]
    public void AfterLock()
    {
        RequireEntries(Connections * EntriesPerConnection, "after the lock");
        FastUnlock();
        RequireEntries(0, "after resetting to unlocked");
    }

    [IterationSetup(Target = nameof(Unlock))]
    public void BeforeUnlock()
    {
        FastLock();
        RequireEntries(Connections * EntriesPerConnection, "after presetting to locked");
    }

    [IterationCleanup(Target = nameof(Unlock))]
    public void AfterUnlock() => RequireEntries(0, "after the unlock");

    /// <summary>Builds what the measured operations need (scripts, a table), outside the measurement.</summary>
    protected abstract void Prepare();

    /// <summary>Releases what <see cref="Prepare"/> holds in this process, before the namespace goes.</summary>
    protected virtual void Release()
    {
    }

    /// <summary>The measured lock, exactly as the method does it.</summary>
    protected abstract void LockAll();

    /// <summary>The measured unlock, exactly as the method does it.</summary>
    protected abstract void UnlockAll();

    /// <summary>The same locked state as <see cref="LockAll"/>, reached as fast as the method allows.</summary>
    protected abstract void FastLock();

    /// <summary>The same unlocked state as <see cref="UnlockAll"/>, reached as fast as the method allows.</summary>
    protected abstract void FastUnlock();

    /// <summary>How many lock entries the namespace's tables hold now, read from the kernel.</summary>
    protected abstract int CountEntries();

    /// <summary>This benchmark's class (BenchmarkDotNet's in-process runner derives one of its own from it).</summary>
    private Type BenchmarkType
    {
        get
        {
            Type type = GetType();
            while (type.Assembly != typeof(LockCostBenchmarks).Assembly && type.BaseType is { } parent)
                type = parent;
            return type;
        }
    }

    private void RequireEntries(int expected, string when)
    {
        int actual = CountEntries();
        if (actual != expected)
            throw new InvalidOperationException($"{BenchmarkType.Name}, {Connections} connections: {actual} entries {when}, expected {expected}");
    }
}
