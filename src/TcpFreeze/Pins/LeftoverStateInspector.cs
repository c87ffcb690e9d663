using TcpFreeze.Ebpf.Interop;

namespace TcpFreeze;

/// <summary>
/// Leftover state: pins and attachments outlive processes, and each can disappear
/// without the other (someone runs 'ip link set dev X xdp off', or removes the pin
/// directory). This finds what is left and reaches the frozen set through it.
/// </summary>
internal static class LeftoverStateInspector
{
    /// <summary>What TcpFreeze has left in the namespace; changes nothing (see <see cref="TcpFreezer.Inspect"/>).</summary>
    public static AttachmentState Inspect(FreezerOptions options, NamespacePins pins)
    {
        string directory = pins.Directory;
        bool exists = Directory.Exists(directory);
        var present = new List<string>();
        var missing = new List<string>();
        var other = new List<string>();
        if (exists)
        {
            foreach (string pin in KernelObjects.PinNames)
                (File.Exists(pins.PathOf(pin)) ? present : missing).Add(pin);
            other.AddRange(Directory.EnumerateFileSystemEntries(directory).Select(Path.GetFileName).OfType<string>()
                .Where(name => !KernelObjects.PinNames.Contains(name)).Order(StringComparer.Ordinal));
        }
        return new AttachmentState(directory, exists, present, missing, other, InterfaceAttacher.FindAttached(options, pins));
    }

    /// <summary>
    /// Opens each map from its pin or, where the pin is gone, through the TcpFreeze
    /// programs attached in the namespace or pinned in its directory (a loaded program
    /// keeps its maps alive). <paramref name="unpinned"/> receives the pins that were missing.
    /// </summary>
    public static FreezerMaps OpenMaps(FreezerOptions options, NamespacePins pins, List<string> unpinned)
    {
        Dictionary<string, HashSet<uint>>? fromPrograms = null;
        var opened = new Dictionary<MapDefinition, BpfMap>();
        try
        {
            foreach (MapDefinition definition in KernelObjects.Maps)
            {
                BpfMap? map = pins.TryOpenMap(definition);
                if (map is null)
                {
                    fromPrograms ??= MapIdsOfTcpFreezePrograms(options, pins);
                    map = OpenUnpinnedMap(options, pins.Directory, definition, fromPrograms);
                    unpinned.Add(definition.PinName);
                }
                opened[definition] = map;
            }
            return new FreezerMaps(opened);
        }
        catch
        {
            foreach (BpfMap map in opened.Values)
                map.Dispose();
            throw;
        }
    }

    private static BpfMap OpenUnpinnedMap(FreezerOptions options, string directory, MapDefinition definition, Dictionary<string, HashSet<uint>> fromPrograms)
    {
        string operation = $"open the frozen set of {options.Namespace}";
        string pin = definition.PinName, mapName = definition.MapName;
        if (!fromPrograms.TryGetValue(mapName, out HashSet<uint>? ids) || ids.Count == 0)
            throw new TcpFreezeException(operation,
                $"the '{pin}' map is neither pinned in {directory} nor used by a TcpFreeze program attached there or pinned; " +
                "nothing that is left can be frozen", remedy: TcpFreezeRemedy.DetachSafely);
        if (ids.Count > 1)
            throw new TcpFreezeException(operation,
                $"the '{pin}' pin is missing and TcpFreeze programs in the namespace use {ids.Count} different '{mapName}' maps (left by several attaches)",
                remedy: TcpFreezeRemedy.DetachAll);
        uint id = ids.Single();
        BpfMap map = BpfMap.TryOpenById(id)
                     ?? throw new TcpFreezeException(operation, $"map {id} ('{mapName}') went away while it was being opened; try again");
        try
        {
            definition.CheckLayout(map, $"map {id} ('{mapName}')");
        }
        catch
        {
            map.Dispose();
            throw;
        }
        return map;
    }

    /// <summary>The ids of the maps TcpFreeze's programs use, by map name: attached programs first, then pinned ones.</summary>
    private static Dictionary<string, HashSet<uint>> MapIdsOfTcpFreezePrograms(FreezerOptions options, NamespacePins pins)
    {
        var programIds = InterfaceAttacher.FindAttached(options, pins).Select(p => p.ProgramId).ToList();
        programIds.AddRange(KernelObjects.Programs.Select(pins.TryPinnedProgramId));
        var byName = new Dictionary<string, HashSet<uint>>(StringComparer.Ordinal);
        foreach (uint programId in programIds.Where(id => id != 0).Distinct())
        {
            using BpfProgram? program = BpfProgram.TryOpenById(programId);
            if (program is null || !KernelObjects.IsProgramName(program.Info.Name))
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
}
