using TcpFreeze.Ebpf.Interop;
using TcpFreeze.Native;

namespace TcpFreeze.Tests.Infrastructure;

/// <summary>
/// A namespace's interfaces and attach points in memory, answering as libbpf does: attaching the
/// program already there changes nothing (not created), another program is refused with EEXIST
/// unless replacing was asked for, and a detach removes only the program it names. Failures can be
/// injected per attach point, as a driver or a vanished device would fail.
/// </summary>
internal sealed class InMemoryAttachPoints : IAttachPoints
{
    public List<NetworkInterfaceInfo> Interfaces { get; } = [];

    /// <summary>The id each of TcpFreeze's programs has (100, 101, ... in <see cref="KernelObjects.Programs"/> order).</summary>
    public Dictionary<ProgramDefinition, uint> Programs { get; } =
        KernelObjects.Programs.Select((d, i) => (d, Id: 100u + (uint)i)).ToDictionary(p => p.d, p => p.Id);

    public Dictionary<int, uint> Xdp { get; } = [];
    public Dictionary<(int IfIndex, TcDirection Direction), uint> Tc { get; } = [];

    /// <summary>Attach points ("xdp", "tc ingress", "tc egress") of an interface index whose attach fails.</summary>
    public HashSet<(int IfIndex, string Point)> Failing { get; } = [];

    public NetworkInterfaceInfo Add(string name, int hardwareType = NetworkInterfaceInfo.Ethernet, bool up = true)
    {
        var nic = new NetworkInterfaceInfo(name, Interfaces.Count + 1, up, hardwareType);
        Interfaces.Add(nic);
        return nic;
    }

    public IReadOnlyList<NetworkInterfaceInfo> ListInterfaces() => Interfaces;

    public uint ProgramId(ProgramDefinition definition) => Programs[definition];

    public uint QueryXdp(int ifIndex) => Xdp.GetValueOrDefault(ifIndex);

    public XdpAttachment AttachXdp(ProgramDefinition definition, int ifIndex, XdpMode mode, bool replace)
    {
        uint id = Programs[definition];
        bool created = Attach(Xdp, ifIndex, id, replace, (ifIndex, "xdp"));
        return new XdpAttachment(ifIndex, id, mode == XdpMode.Auto ? XdpMode.Native : mode, created);
    }

    public bool DetachXdp(int ifIndex, uint programId) => Detach(Xdp, ifIndex, programId);

    public uint QueryTc(int ifIndex, TcDirection direction) => Tc.GetValueOrDefault((ifIndex, direction));

    public TcAttachment AttachTc(ProgramDefinition definition, int ifIndex, TcDirection direction, bool replace)
    {
        uint id = Programs[definition];
        bool created = Attach(Tc, (ifIndex, direction), id, replace, (ifIndex, $"tc {direction.ToString().ToLowerInvariant()}"));
        return new TcAttachment(ifIndex, direction, BpfNames.TcHandle, BpfNames.TcPriority, id, created);
    }

    public bool DetachTc(int ifIndex, TcDirection direction, uint programId) => Detach(Tc, (ifIndex, direction), programId);

    private bool Attach<TPoint>(Dictionary<TPoint, uint> points, TPoint point, uint id, bool replace, (int, string) where) where TPoint : notnull
    {
        if (Failing.Contains(where))
            throw new BpfException($"attach {where.Item2} to interface {where.Item1}", Errnos.EOPNOTSUPP);
        uint current = points.GetValueOrDefault(point);
        if (current == id)
            return false;
        if (current != 0 && !replace)
            throw new BpfException($"attach {where.Item2} to interface {where.Item1}", Errnos.EEXIST);
        points[point] = id;
        return true;
    }

    private static bool Detach<TPoint>(Dictionary<TPoint, uint> points, TPoint point, uint id) where TPoint : notnull
        => points.GetValueOrDefault(point) == id && points.Remove(point);
}
