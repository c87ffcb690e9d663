using BenchmarkDotNet.Attributes;
using Ebpf.Interop;

namespace TcpFreeze.Benchmarks;

/// <summary>
/// Freezing then thawing N connections through the API: one batch call per map, and
/// one call per connection; plus the floor of one raw map syscall per key.
/// </summary>
[MemoryDiagnoser]
public class FreezeThawBenchmarks
{
    private BenchNamespace _ns = null!;
    private TcpFreezer _freezer = null!;
    private BpfMap _map = null!;
    private ConnectionKey[] _keys = [];

    [Params(1_500, 100_000)]
    public int Connections { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _ns = new BenchNamespace("freeze");
        _freezer = TcpFreezer.Attach(_ns.Options);
        _map = BpfMap.OpenPinned(Path.Combine(_freezer.PinDirectory, "connections"));
        _keys = BenchNamespace.Keys(Connections);
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
        _freezer.Freeze(_keys);
        _freezer.Thaw(_keys);
    }

    [Benchmark(Description = "API one by one: Freeze([k]) + Thaw([k]) per key")]
    public void OneByOneApi()
    {
        foreach (ConnectionKey key in _keys)
            _freezer.Freeze([key]);
        foreach (ConnectionKey key in _keys)
            _freezer.Thaw([key]);
    }

    [Benchmark(Description = "raw map: one update + one delete syscall per key")]
    public void OneByOneRawMap()
    {
        var entry = new FreezeEntry();
        foreach (ConnectionKey key in _keys)
            _map.Update(key, entry);
        foreach (ConnectionKey key in _keys)
            _map.Delete(key);
    }
}
