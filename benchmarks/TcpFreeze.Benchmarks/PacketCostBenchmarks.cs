using System.Net;
using BenchmarkDotNet.Attributes;
using TcpFreeze.Ebpf.Interop;

namespace TcpFreeze.Benchmarks;

/// <summary>
/// Per-packet cost of the XDP ingress program, run in the kernel by
/// BPF_PROG_TEST_RUN: each invocation runs the program <see cref="Repeat"/> times on
/// one packet, so the reported time per operation is the cost per packet (the one
/// system call is spread over the repetitions).
/// </summary>
public class PacketCostBenchmarks
{
    private const int Repeat = 200_000;
    private BpfObject _object = null!;
    private BpfProgram _xdp = null!;
    private byte[] _hit = [], _miss = [];

    [Params(1_500, 100_000)]
    public int FrozenEntries { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _object = BpfObject.Open(BpfNames.LoadObject(), "tcpfreeze-bench");
        _object.SetMaxEntries(BpfNames.ConnectionsMap, 131_072);
        _object.Load();
        _xdp = _object.GetProgram(BpfNames.XdpProgram);
        using BpfMap<ConnectionKey, FreezeEntry> connections = _object.GetMap(BpfNames.ConnectionsMap).As<ConnectionKey, FreezeEntry>();
        ConnectionKey[] keys = BenchNamespace.Keys(FrozenEntries);
        connections.UpdateBatch(keys, new FreezeEntry[keys.Length]);
        ConnectionKey frozen = keys[keys.Length / 2];
        _hit = Frame(frozen.Remote, frozen.Local);
        _miss = Frame(IPEndPoint.Parse("198.19.255.254:1"), frozen.Local);
        if (_xdp.TestRun(_hit).ReturnValue != 1 || _xdp.TestRun(_miss).ReturnValue != 2)
            throw new InvalidOperationException("the hit packet must be dropped and the miss packet passed");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _xdp.Dispose();
        _object.Dispose();
    }

    /// <summary>
    /// The kernel's own mean per packet (BPF_PROG_TEST_RUN's duration), next to the
    /// wall-clock time per packet of the same call: the kernel figure leaves out the
    /// system call and the time the loop spent rescheduled.
    /// </summary>
    public static void PrintKernelFigures()
    {
        Console.WriteLine("| entries | packet | kernel ns/packet (median of 5) | wall ns/packet (median of 5) |");
        Console.WriteLine("|---|---|---|---|");
        foreach (int entries in new[] { 1_500, 100_000 })
        {
            var bench = new PacketCostBenchmarks { FrozenEntries = entries };
            bench.Setup();
            foreach ((string name, byte[] packet) in new[] { ("frozen (drop)", bench._hit), ("other (pass)", bench._miss) })
            {
                var kernel = new List<double>();
                var wall = new List<double>();
                for (int i = 0; i < 5; i++)
                {
                    long start = System.Diagnostics.Stopwatch.GetTimestamp();
                    BpfTestRunResult result = bench._xdp.TestRun(packet, 1_000_000);
                    wall.Add(System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalNanoseconds / 1_000_000);
                    kernel.Add(result.MeanNanoseconds);
                }
                Console.WriteLine($"| {entries:N0} | {name} | {Median(kernel):F0} | {Median(wall):F0} |");
            }
            bench.Cleanup();
        }
    }

    private static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);

    [Benchmark(OperationsPerInvoke = Repeat, Description = "XDP, frozen connection (drop)")]
    public uint Hit() => _xdp.TestRun(_hit, Repeat).ReturnValue;

    [Benchmark(OperationsPerInvoke = Repeat, Description = "XDP, other connection (pass)")]
    public uint Miss() => _xdp.TestRun(_miss, Repeat).ReturnValue;

    private static byte[] Frame(IPEndPoint source, IPEndPoint destination)
    {
        var frame = new byte[14 + 20 + 20];
        frame[12] = 0x08;
        frame[14] = 0x45;
        frame[17] = 40;
        frame[22] = 64;
        frame[23] = 6;
        source.Address.GetAddressBytes().CopyTo(frame, 26);
        destination.Address.GetAddressBytes().CopyTo(frame, 30);
        frame[34] = (byte)(source.Port >> 8);
        frame[35] = (byte)source.Port;
        frame[36] = (byte)(destination.Port >> 8);
        frame[37] = (byte)destination.Port;
        frame[46] = 0x50;
        frame[47] = 0x10;
        return frame;
    }
}
