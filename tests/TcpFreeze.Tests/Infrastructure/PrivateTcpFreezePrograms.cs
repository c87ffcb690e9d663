using Ebpf.Interop;

namespace TcpFreeze.Tests.Infrastructure;

/// <summary>
/// TcpFreeze's kernel programs and maps loaded privately (not pinned, not attached), for
/// tests that run the programs with BPF_PROG_TEST_RUN and set the maps by hand.
/// </summary>
public sealed class PrivateTcpFreezePrograms : IDisposable
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
            Connections = _object.GetMap(BpfNames.ConnectionsMap);
            Endpoints = _object.GetMap(BpfNames.EndpointsMap);
            Config = _object.GetMap(BpfNames.ConfigMap);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public BpfProgram Xdp { get; } = null!;
    public BpfProgram Tc { get; } = null!;
    public BpfMap Connections { get; } = null!;
    public BpfMap Endpoints { get; } = null!;
    public BpfMap Config { get; } = null!;

    public void Dispose()
    {
        Xdp?.Dispose();
        Tc?.Dispose();
        Connections?.Dispose();
        Endpoints?.Dispose();
        Config?.Dispose();
        _object.Dispose();
    }
}
