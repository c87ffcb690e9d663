using TcpFreeze.Ebpf.Interop;

namespace TcpFreeze.Tests.Infrastructure;

/// <summary>
/// TcpFreeze's kernel programs and maps loaded privately (not pinned, not attached), for
/// tests that run the programs with BPF_PROG_TEST_RUN and set the maps by hand.
/// </summary>
internal sealed class PrivateTcpFreezePrograms : IDisposable
{
    private readonly BpfObject _object;

    public PrivateTcpFreezePrograms(string name, uint maxConnections)
    {
        _object = BpfObject.Open(BpfNames.LoadObject(), name);
        try
        {
            _object.SetMaxEntries(BpfNames.ConnectionsMap, maxConnections);
            _object.Load();
            Xdp = _object.GetProgram(BpfNames.XdpProgram);
            Tc = _object.GetProgram(BpfNames.TcProgram);
            TcIngress = _object.GetProgram(BpfNames.TcIngressProgram);
            L3Ingress = _object.GetProgram(BpfNames.L3IngressProgram);
            L3Egress = _object.GetProgram(BpfNames.L3EgressProgram);
            Connections = _object.GetMap(BpfNames.ConnectionsMap).As<ConnectionKey, FreezeEntry>();
            Endpoints = _object.GetMap(BpfNames.EndpointsMap).As<EndpointKey, FreezeEntry>();
            Config = _object.GetMap(BpfNames.ConfigMap).As<uint, ulong>();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public BpfProgram Xdp { get; } = null!;
    public BpfProgram Tc { get; } = null!;
    public BpfProgram TcIngress { get; } = null!;
    public BpfProgram L3Ingress { get; } = null!;
    public BpfProgram L3Egress { get; } = null!;
    public BpfMap<ConnectionKey, FreezeEntry> Connections { get; } = null!;
    public BpfMap<EndpointKey, FreezeEntry> Endpoints { get; } = null!;
    public BpfMap<uint, ulong> Config { get; } = null!;

    /// <summary>The ingress program of <paramref name="hook"/>.</summary>
    public BpfProgram Ingress(IngressHook hook) => hook == IngressHook.Tc ? TcIngress : Xdp;

    /// <summary>
    /// Runs the ingress program of <paramref name="hook"/> on a frame: true when it drops
    /// it (XDP_DROP, TC_ACT_SHOT), false when it passes it (XDP_PASS, TC_ACT_OK); any
    /// other verdict fails the test.
    /// </summary>
    public bool IngressDrops(IngressHook hook, ReadOnlySpan<byte> frame)
    {
        const uint XdpDrop = 1, XdpPass = 2, TcOk = 0, TcShot = 2;
        uint verdict = Ingress(hook).TestRun(frame).ReturnValue;
        (uint drop, uint pass) = hook == IngressHook.Tc ? (TcShot, TcOk) : (XdpDrop, XdpPass);
        Assert.True(verdict == drop || verdict == pass, $"the {hook} ingress program returned {verdict}");
        return verdict == drop;
    }

    public void Dispose()
    {
        Xdp?.Dispose();
        Tc?.Dispose();
        TcIngress?.Dispose();
        L3Ingress?.Dispose();
        L3Egress?.Dispose();
        Connections?.Dispose();
        Endpoints?.Dispose();
        Config?.Dispose();
        _object.Dispose();
    }
}
