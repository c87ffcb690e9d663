using System.ComponentModel;
using BenchmarkDotNet.Attributes;
using TcpFreeze.Ebpf.Interop;

namespace TcpFreeze.Benchmarks;

/// <summary>
/// Freezing then thawing N connections through the API: one batch call per map, and
/// one call per connection; plus the floor of one raw map syscall per key. Each method
/// leaves the map as it found it (empty), so it runs under the ordinary job, many
/// invocations per iteration. Setup checks once, per method, that a lock leaves N entries
/// in the kernel's map and an unlock none.
/// </summary>
[Description("TcpFreeze")]
[MemoryDiagnoser]
public class FreezeThawBenchmarks
{
    private BenchNamespace _ns = null!;
    private TcpFreezer _freezer = null!;
    private BpfMap<ConnectionKey, FreezeEntry> _map = null!;
    private ConnectionKey[] _keys = [];

    [ParamsSource(nameof(ConnectionCounts))]
    public int Connections { get; set; }

    public IEnumerable<int> ConnectionCounts => BenchSettings.Connections(1, 100, 1_500, 10_000, 100_000);

    [GlobalSetup]
    public void Setup()
    {
        _ns = new BenchNamespace("freeze");
        _freezer = TcpFreezer.Attach(_ns.Options);
        _map = BpfMap.OpenPinned(Path.Combine(_freezer.PinDirectory, "connections")).As<ConnectionKey, FreezeEntry>();
        _keys = BenchNamespace.Keys(Connections);
        Verify(nameof(Batch), () => _freezer.Freeze(_keys, lease: Lease.Forever), () => _freezer.Thaw(_keys));
        Verify(nameof(OneByOneApi), LockOneByOneApi, UnlockOneByOneApi);
        Verify(nameof(OneByOneRawMap), LockOneByOneRawMap, UnlockOneByOneRawMap);
    }

    private void Verify(string method, Action lockAll, Action unlockAll)
    {
        lockAll();
        int locked = _map.GetKeys().Count;
        unlockAll();
        int unlocked = _map.GetKeys().Count;
        if (locked != Connections || unlocked != 0)
            throw new InvalidOperationException($"{method}, {Connections} connections: {locked} map entries after the lock, {unlocked} after the unlock");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _map.Dispose();
        _freezer.Dispose();
        _ns.Dispose();
    }

    [Benchmark(Baseline = true, Description = "API batch: Freeze(all) + Thaw(all)")]
    public void Batch()
    {
        _freezer.Freeze(_keys, lease: Lease.Forever);
        _freezer.Thaw(_keys);
    }

    [Benchmark(Description = "API one by one: Freeze([k]) + Thaw([k]) per key")]
    public void OneByOneApi()
    {
        LockOneByOneApi();
        UnlockOneByOneApi();
    }

    private void LockOneByOneApi()
    {
        foreach (ConnectionKey key in _keys)
            _freezer.Freeze([key], lease: Lease.Forever);
    }

    private void UnlockOneByOneApi()
    {
        foreach (ConnectionKey key in _keys)
            _freezer.Thaw([key]);
    }

    [Benchmark(Description = "raw map: one update + one delete syscall per key")]
    public void OneByOneRawMap()
    {
        LockOneByOneRawMap();
        UnlockOneByOneRawMap();
    }

    private void LockOneByOneRawMap()
    {
        var entry = new FreezeEntry();
        foreach (ConnectionKey key in _keys)
            _map.Update(key, entry);
    }

    private void UnlockOneByOneRawMap()
    {
        foreach (ConnectionKey key in _keys)
            _map.Delete(key);
    }
}
