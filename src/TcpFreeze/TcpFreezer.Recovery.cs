using Ebpf.Interop;

namespace TcpFreeze;

// Leftover state: pins and attachments outlive processes, and each can disappear
// without the other (someone runs 'ip link set dev X xdp off', or removes the pin
// directory). These members find what is left and reach the frozen set through it.
public sealed partial class TcpFreezer
{
    /// <summary>
    /// The maps this freezer reached through a TcpFreeze program (attached in the
    /// namespace or pinned) because their pins were missing; empty when every map
    /// came from its pin. Only <see cref="OpenForRecovery"/> sets it.
    /// </summary>
    public IReadOnlyList<string> UnpinnedMaps { get; private init; } = [];

    /// <summary>
    /// Looks at what TcpFreeze has left in a namespace, changing nothing: which of its
    /// pins exist and which of its programs are attached to which interfaces. Pins and
    /// attachments are read separately, because either can be gone without the other.
    /// </summary>
    public static AttachmentState Inspect(FreezerOptions? options = null)
    {
        options ??= new FreezerOptions();
        string directory = GetPinDirectory(options);
        bool exists = Directory.Exists(directory);
        var pins = new List<string>();
        var missing = new List<string>();
        var other = new List<string>();
        if (exists)
        {
            foreach (string pin in BpfNames.AllPins)
                (File.Exists(Path.Combine(directory, pin)) ? pins : missing).Add(pin);
            other.AddRange(Directory.EnumerateFileSystemEntries(directory).Select(Path.GetFileName).OfType<string>()
                .Where(name => !BpfNames.AllPins.Contains(name)).Order(StringComparer.Ordinal));
        }
        return new AttachmentState(directory, exists, pins, missing, other, FindAttachedPrograms(options));
    }

    /// <summary>
    /// Opens the frozen set from whatever is left, for thawing and listing: each map
    /// from its pin or, where the pin is gone, through the TcpFreeze programs attached
    /// in the namespace or pinned in its directory (a loaded program keeps its maps
    /// alive). <see cref="UnpinnedMaps"/> says which maps had no pin. Freezing through
    /// such a freezer works, but 'tcpfreeze detach' and 'tcpfreeze attach' are the way
    /// back to a state other processes can open.
    /// </summary>
    /// <exception cref="TcpFreezeException">A map is neither pinned nor used by any TcpFreeze program, or the programs disagree on it.</exception>
    public static TcpFreezer OpenForRecovery(FreezerOptions? options = null)
    {
        options ??= new FreezerOptions();
        if (options.Logger is not null)
            LibbpfLog.SetLogger(options.Logger);
        string directory = GetPinDirectory(options);
        Dictionary<string, HashSet<uint>>? fromPrograms = null;
        var unpinned = new List<string>();
        var opened = new List<BpfMap>();
        try
        {
            BpfMap Get(string pin, string mapName, int keySize)
            {
                BpfMap? map = PinnedObjects.TryOpenMap(directory, pin, keySize);
                if (map is null)
                {
                    fromPrograms ??= MapIdsOfTcpFreezePrograms(options, directory);
                    map = OpenUnpinnedMap(options, directory, pin, mapName, keySize, fromPrograms);
                    unpinned.Add(pin);
                }
                opened.Add(map);
                return map;
            }

            BpfMap connections = Get(BpfNames.ConnectionsPin, BpfNames.ConnectionsMap, ConnectionKey.Size);
            BpfMap endpoints = Get(BpfNames.EndpointsPin, BpfNames.EndpointsMap, EndpointKey.Size);
            BpfMap counters = Get(BpfNames.CountersPin, BpfNames.CountersMap, sizeof(uint));
            BpfMap config = Get(BpfNames.ConfigPin, BpfNames.ConfigMap, sizeof(uint));
            return new TcpFreezer(options, directory, connections, endpoints, counters, config, []) { UnpinnedMaps = unpinned };
        }
        catch
        {
            foreach (BpfMap map in opened)
                map.Dispose();
            throw;
        }
    }

    private static BpfMap OpenUnpinnedMap(FreezerOptions options, string directory, string pin, string mapName, int keySize,
        Dictionary<string, HashSet<uint>> fromPrograms)
    {
        string operation = $"open the frozen set of {options.Namespace}";
        if (!fromPrograms.TryGetValue(mapName, out HashSet<uint>? ids) || ids.Count == 0)
            throw new TcpFreezeException(operation,
                $"the '{pin}' map is neither pinned in {directory} nor used by a TcpFreeze program attached there or pinned; " +
                "nothing that is left can be frozen, so 'tcpfreeze detach' removes it safely and 'tcpfreeze attach' starts afresh");
        if (ids.Count > 1)
            throw new TcpFreezeException(operation,
                $"the '{pin}' pin is missing and TcpFreeze programs in the namespace use {ids.Count} different '{mapName}' maps (left by several attaches); " +
                "run 'tcpfreeze detach' to remove them all, which thaws everything");
        uint id = ids.Single();
        BpfMap map = BpfMap.TryOpenById(id)
                     ?? throw new TcpFreezeException(operation, $"map {id} ('{mapName}') went away while it was being opened; try again");
        try
        {
            PinnedObjects.CheckLayout(map, pin, keySize, $"map {id} ('{mapName}')");
        }
        catch
        {
            map.Dispose();
            throw;
        }
        return map;
    }

    /// <summary>The ids of the maps TcpFreeze's programs use, by map name: attached programs first, then pinned ones.</summary>
    private static Dictionary<string, HashSet<uint>> MapIdsOfTcpFreezePrograms(FreezerOptions options, string directory)
    {
        var programIds = FindAttachedPrograms(options).Select(p => p.ProgramId).ToList();
        programIds.Add(PinnedObjects.TryPinnedProgramId(directory, BpfNames.XdpPin));
        programIds.Add(PinnedObjects.TryPinnedProgramId(directory, BpfNames.TcPin));
        programIds.Add(PinnedObjects.TryPinnedProgramId(directory, BpfNames.TcIngressPin));
        var byName = new Dictionary<string, HashSet<uint>>(StringComparer.Ordinal);
        foreach (uint programId in programIds.Where(id => id != 0).Distinct())
        {
            using BpfProgram? program = BpfProgram.TryOpenById(programId);
            if (program is null || program.Info.Name is not (BpfNames.XdpProgram or BpfNames.TcProgram or BpfNames.TcIngressProgram))
                continue; // detached and unloaded meanwhile, or not ours
            foreach (uint mapId in program.GetMapIds())
            {
                using BpfMap? map = BpfMap.TryOpenById(mapId);
                if (map is null)
                    continue;
                if (!byName.TryGetValue(map.Info.Name, out HashSet<uint>? ids))
                    byName[map.Info.Name] = ids = [];
                ids.Add(mapId);
            }
        }
        return byName;
    }

    /// <summary>TcpFreeze's programs attached to the namespace's interfaces, recognised by their kernel names.</summary>
    private static List<AttachedProgram> FindAttachedPrograms(FreezerOptions options) => options.Namespace.Run(() =>
    {
        var found = new List<AttachedProgram>();
        foreach (NetworkInterfaceInfo nic in NetworkInterfaceInfo.List())
        {
            uint xdp = Xdp.Query(nic.Index).ProgramId;
            if (xdp != 0 && PinnedObjects.IsTcpFreezeProgram(xdp, BpfNames.XdpProgram))
                found.Add(new AttachedProgram(nic.Name, ProgramAttachPoint.XdpIngress, xdp));
            uint tc = Tc.Query(nic.Index, TcDirection.Egress, BpfNames.TcHandle, BpfNames.TcPriority);
            if (tc != 0 && PinnedObjects.IsTcpFreezeProgram(tc, BpfNames.TcProgram))
                found.Add(new AttachedProgram(nic.Name, ProgramAttachPoint.TcEgress, tc));
            uint ingress = Tc.Query(nic.Index, TcDirection.Ingress, BpfNames.TcHandle, BpfNames.TcPriority);
            if (ingress != 0 && PinnedObjects.IsTcpFreezeProgram(ingress, BpfNames.TcIngressProgram))
                found.Add(new AttachedProgram(nic.Name, ProgramAttachPoint.TcIngress, ingress));
        }
        return found;
    });

    /// <summary>
    /// The pin lock for a thaw. A freezer recovered without pins may find no pin root
    /// at all (someone removed it); then there is nothing to lock against, as in
    /// <see cref="Detach(FreezerOptions?)"/>.
    /// </summary>
    private PinLock? AcquirePinLockForThaw()
        => UnpinnedMaps.Count > 0 && !Directory.Exists(_options.PinRoot) ? null : PinLock.Acquire(_options.PinRoot);
}

/// <summary>Where a TcpFreeze program runs.</summary>
public enum ProgramAttachPoint
{
    /// <summary>XDP, on ingress.</summary>
    XdpIngress,
    /// <summary>TC clsact, on egress.</summary>
    TcEgress,
    /// <summary>TC clsact, on ingress (<see cref="IngressHook.Tc"/>).</summary>
    TcIngress,
}

/// <summary>A TcpFreeze program found attached to an interface.</summary>
/// <param name="Interface">The interface's name.</param>
/// <param name="AttachPoint">Where on it.</param>
/// <param name="ProgramId">The kernel's program id.</param>
public sealed record AttachedProgram(string Interface, ProgramAttachPoint AttachPoint, uint ProgramId);

/// <summary>What TcpFreeze has left in a namespace (see <see cref="TcpFreezer.Inspect"/>).</summary>
/// <param name="PinDirectory">The namespace's pin directory.</param>
/// <param name="PinDirectoryExists">Whether that directory exists.</param>
/// <param name="Pins">TcpFreeze's pins found in it.</param>
/// <param name="MissingPins">TcpFreeze's pins missing from it (empty when the directory does not exist).</param>
/// <param name="OtherEntries">Files in it that TcpFreeze did not create; detach leaves them, and the directory, in place.</param>
/// <param name="Programs">TcpFreeze's programs attached to the namespace's interfaces.</param>
public sealed record AttachmentState(string PinDirectory, bool PinDirectoryExists, IReadOnlyList<string> Pins, IReadOnlyList<string> MissingPins,
    IReadOnlyList<string> OtherEntries, IReadOnlyList<AttachedProgram> Programs)
{
    /// <summary>Whether nothing of TcpFreeze's is there: no pin directory and no attached program.</summary>
    public bool IsEmpty => !PinDirectoryExists && Programs.Count == 0;

    /// <summary>Whether any TcpFreeze program is attached in the namespace.</summary>
    public bool ProgramsAttached => Programs.Count > 0;

    /// <summary>The interfaces with a TcpFreeze program attached, in interface order.</summary>
    public IReadOnlyList<string> AttachedInterfaces => Programs.Select(p => p.Interface).Distinct().ToList();

    /// <summary>
    /// Whether something is left that can hold a frozen set: a map pin, a program pin
    /// (a pinned program keeps its maps) or an attached program.
    /// </summary>
    public bool HasFrozenSetSource => Programs.Count > 0 || Pins.Count > 0;
}
