using System.Runtime.CompilerServices;
using TcpFreeze.Ebpf.Interop;

namespace TcpFreeze;

/// <summary>One of TcpFreeze's maps: its name in the object, its pin, its layout, and its capacity when created.</summary>
/// <param name="MapName">The map's name in bpf/tcpfreeze.bpf.c (and the kernel's name for it).</param>
/// <param name="PinName">The pin's file name in the namespace's pin directory.</param>
/// <param name="KeySize">The key size this version uses.</param>
/// <param name="ValueSize">The value size this version uses.</param>
/// <param name="Capacity">The capacity to create it with, from the options; null: the object's own.</param>
internal sealed record MapDefinition(string MapName, string PinName, int KeySize, int ValueSize, Func<FreezerOptions, uint>? Capacity = null)
{
    /// <summary>Refuses a map (named <paramref name="what"/> in the error) whose key or value size is not this definition's.</summary>
    public void CheckLayout(BpfMap map, string what)
    {
        if (map.Info.KeySize != KeySize || map.Info.ValueSize != ValueSize)
            throw new TcpFreezeException($"open {what}",
                $"the map has {map.Info.KeySize}-byte keys and {map.Info.ValueSize}-byte values, not {KeySize} and {ValueSize}: " +
                "it was made by an incompatible TcpFreeze version", remedy: TcpFreezeRemedy.RemoveIncompatible);
    }
}

/// <summary>One of TcpFreeze's programs: its name in the object (and the kernel's name for it) and its pin.</summary>
internal sealed record ProgramDefinition(string ProgramName, string PinName);

/// <summary>
/// The kernel objects of one namespace, as data: every map and program TcpFreeze loads
/// and pins, with the layout this version expects. Loading, opening, checking and
/// detaching all walk these tables, so a new map or a new value layout is one row here
/// (and the C definition in bpf/).
/// </summary>
internal static class KernelObjects
{
    public static readonly MapDefinition Connections = new(BpfNames.ConnectionsMap, "connections", ConnectionKey.Size, Unsafe.SizeOf<FreezeEntry>(), o => o.MaxConnections);
    public static readonly MapDefinition Endpoints = new(BpfNames.EndpointsMap, "endpoints", EndpointKey.Size, Unsafe.SizeOf<FreezeEntry>(), o => o.MaxEndpoints);
    public static readonly MapDefinition Counters = new(BpfNames.CountersMap, "counters", sizeof(uint), sizeof(ulong));
    public static readonly MapDefinition Config = new(BpfNames.ConfigMap, "config", sizeof(uint), sizeof(ulong));

    /// <summary>One replay record per connection at most, so it gets the connections map's capacity.</summary>
    public static readonly MapDefinition Replay = new(BpfNames.ReplayMap, "replay", ConnectionKey.Size, Unsafe.SizeOf<ReplayRecord>(), o => o.MaxConnections);

    /// <summary>Its mirror: this host's own last dropped data segment per connection, the same layout and capacity.</summary>
    public static readonly MapDefinition LocalReplay = new(BpfNames.LocalReplayMap, "replay_local", ConnectionKey.Size, Unsafe.SizeOf<ReplayRecord>(), o => o.MaxConnections);

    /// <summary>Every map (<see cref="FreezerMaps"/> takes them by row).</summary>
    public static readonly MapDefinition[] Maps = [Connections, Endpoints, Counters, Config, Replay, LocalReplay];

    public static readonly ProgramDefinition XdpIngress = new(BpfNames.XdpProgram, "xdp_ingress");
    public static readonly ProgramDefinition TcEgress = new(BpfNames.TcProgram, "tc_egress");
    public static readonly ProgramDefinition TcIngress = new(BpfNames.TcIngressProgram, "tc_ingress");
    public static readonly ProgramDefinition L3Ingress = new(BpfNames.L3IngressProgram, "l3_ingress");
    public static readonly ProgramDefinition L3Egress = new(BpfNames.L3EgressProgram, "l3_egress");

    /// <summary>
    /// Every program. Both ingress programs, and the L3 pair, are loaded and pinned whichever
    /// hook is used and whether or not an L3 device exists yet, so switching hooks or covering
    /// a tun device that appears later never reloads.
    /// </summary>
    public static readonly ProgramDefinition[] Programs = [XdpIngress, TcEgress, TcIngress, L3Ingress, L3Egress];

    /// <summary>The file name of every pin in a namespace's pin directory (<see cref="NamespacePins"/>): the maps', then the programs'.</summary>
    public static readonly string[] PinNames = [.. Maps.Select(m => m.PinName), .. Programs.Select(p => p.PinName)];

    /// <summary>The programs that go to TC ingress on some interface (Ethernet or L3).</summary>
    public static readonly ProgramDefinition[] TcIngressPrograms = [TcIngress, L3Ingress];

    /// <summary>The programs that go to TC egress on some interface (Ethernet or L3).</summary>
    public static readonly ProgramDefinition[] TcEgressPrograms = [TcEgress, L3Egress];

    /// <summary>
    /// The ingress and egress programs <paramref name="nic"/> runs: the L3 pair on an L3 device,
    /// whatever <paramref name="hook"/> says (see bpf/tcpfreeze.bpf.c: no XDP there); otherwise
    /// the ingress program of <paramref name="hook"/> and the TC egress program.
    /// </summary>
    public static (ProgramDefinition Ingress, ProgramDefinition Egress) ProgramsFor(NetworkInterfaceInfo nic, IngressHook hook)
        => nic.IsLayer3 ? (L3Ingress, L3Egress) : (hook == IngressHook.Tc ? TcIngress : XdpIngress, TcEgress);

    /// <summary>Whether <paramref name="name"/> is the kernel name of one of TcpFreeze's programs.</summary>
    public static bool IsProgramName(string name) => Array.Exists(Programs, p => p.ProgramName == name);
}
