using System.ComponentModel;
using BenchmarkDotNet.Attributes;
using TcpFreeze.Resume;

namespace TcpFreeze.Benchmarks;

/// <summary>
/// The resume kick's own cost for N released connections that each dropped data both ways
/// (5 segments per direction, so 7 messages per direction: 14 per connection): building the
/// messages and sending them with sendmmsg in batches of 1,024. The messages stay in the
/// benchmark's own namespace: 198.18.0.0/15 is routed to one end of a veth pair with ARP off
/// (no neighbour lookups), and the other end, which has no address, drops what arrives; so only
/// the sending is measured.
/// </summary>
[Description("Resume kick")]
public class ResumeKickBenchmarks
{
    private BenchNamespace _ns = null!;
    private List<(ConnectionKey Key, FreezeEntry Entry)> _released = [];

    [ParamsSource(nameof(ConnectionCounts))]
    public int Connections { get; set; }

    public IEnumerable<int> ConnectionCounts => BenchSettings.Connections(1_500, 10_000);

    [GlobalSetup]
    public void Setup()
    {
        _ns = new BenchNamespace("kick");
        try
        {
            Prepare();
        }
        catch
        {
            _ns.Dispose();
            throw;
        }
    }

    private void Prepare()
    {
        BenchNamespace.Ip("-n", _ns.Name, "link", "add", "kick0", "type", "veth", "peer", "name", "kick1");
        BenchNamespace.Ip("-n", _ns.Name, "link", "set", "kick0", "arp", "off");
        BenchNamespace.Ip("-n", _ns.Name, "addr", "add", "198.18.255.254/15", "dev", "kick0");
        BenchNamespace.Ip("-n", _ns.Name, "link", "set", "kick0", "up");
        BenchNamespace.Ip("-n", _ns.Name, "link", "set", "kick1", "up");
        var entry = new FreezeEntry { RemoteSeq = 0x01020304, LocalSeq = 0x05060708, RemoteDataDrops = 5, LocalDataDrops = 5, Dropped = 10 };
        _released = BenchNamespace.Keys(Connections).Select(k => (k, entry)).ToList();
        KickResult check = Kick();
        if (check.ConnectionsKicked != Connections || check.PacketsSent != Connections * 14)
            throw new InvalidOperationException($"{Connections} connections: the kick sent {check}, expected {Connections * 14} messages");
    }

    [GlobalCleanup]
    public void Cleanup() => _ns.Dispose();

    [Benchmark(Description = "resume kick: plan + sendmmsg (14 messages per connection)")]
    public KickResult Kick() => ResumeKick.Send(_ns.Options.Namespace, ResumeKick.Plan(_released));
}
