using TcpFreeze.Ebpf.Interop;

namespace TcpFreeze;

/// <summary>
/// The kernel objects of one namespace's pin directory, one per row of
/// <see cref="KernelObjects"/>. Maps that are pinned already are reused (they hold the
/// frozen set); if anything is missing, the programs are loaded afresh on top of the
/// surviving maps, so programs and maps always agree.
/// </summary>
internal sealed class PinnedObjects
{
    private readonly Dictionary<MapDefinition, BpfMap> _maps;
    private Dictionary<ProgramDefinition, BpfProgram>? _programs;

    private PinnedObjects(Dictionary<MapDefinition, BpfMap> maps, Dictionary<ProgramDefinition, BpfProgram> programs)
    {
        _maps = maps;
        _programs = programs;
    }

    /// <summary>The program of <paramref name="definition"/>; only until <see cref="DisposePrograms"/>.</summary>
    public BpfProgram Program(ProgramDefinition definition)
        => (_programs ?? throw new ObjectDisposedException(nameof(PinnedObjects)))[definition];

    /// <summary>Hands the maps over to a <see cref="FreezerMaps"/>, which owns them from now on.</summary>
    public FreezerMaps TakeMaps() => new(_maps);

    /// <summary>Opens the objects pinned in <paramref name="pins"/>, loading the programs afresh (and the missing maps) if anything is missing.</summary>
    public static PinnedObjects OpenOrLoad(NamespacePins pins, FreezerOptions options, List<string> createdPins)
    {
        var maps = new Dictionary<MapDefinition, BpfMap>();
        var programs = new Dictionary<ProgramDefinition, BpfProgram>();
        try
        {
            foreach (MapDefinition definition in KernelObjects.Maps)
                if (pins.TryOpenMap(definition) is { } map)
                    maps[definition] = map;
            foreach (ProgramDefinition definition in KernelObjects.Programs)
                if (pins.TryOpenProgram(definition) is { } program)
                    programs[definition] = program;
            if (maps.Count == KernelObjects.Maps.Length && programs.Count == KernelObjects.Programs.Length)
                return new PinnedObjects(maps, programs);

            using BpfObject obj = BpfObject.Open(BpfNames.LoadObject(), "tcpfreeze");
            foreach (MapDefinition definition in KernelObjects.Maps)
            {
                if (maps.TryGetValue(definition, out BpfMap? existing))
                    obj.ReuseMap(definition.MapName, existing);
                else if (definition.Capacity is { } capacity)
                    obj.SetMaxEntries(definition.MapName, capacity(options));
            }
            obj.Load();

            bool configCreated = !maps.ContainsKey(KernelObjects.Config);
            foreach (MapDefinition definition in KernelObjects.Maps)
                if (!maps.ContainsKey(definition))
                    maps[definition] = PinNew(obj.GetMap(definition.MapName), pins.PathOf(definition), createdPins);
            // Surviving endpoint entries must be enforced by the new programs.
            if (configCreated && !maps[KernelObjects.Endpoints].IsEmpty())
                FreezerMaps.OpenEndpointGate(maps[KernelObjects.Config].As<uint, ulong>());

            // Fresh programs use exactly these maps; older program pins may not.
            foreach (ProgramDefinition definition in KernelObjects.Programs)
            {
                if (programs.Remove(definition, out BpfProgram? old))
                    old.Dispose();
                programs[definition] = RePin(obj.GetProgram(definition.ProgramName), pins.PathOf(definition), createdPins);
            }
            return new PinnedObjects(maps, programs);
        }
        catch
        {
            foreach (BpfMap map in maps.Values)
                map.Dispose();
            foreach (BpfProgram program in programs.Values)
                program.Dispose();
            throw;
        }
    }

    /// <summary>Opens every map from its pin in <paramref name="pins"/>.</summary>
    /// <exception cref="TcpFreezeException">A pin is missing or has the wrong layout.</exception>
    public static FreezerMaps OpenMaps(NamespacePins pins)
    {
        var opened = new Dictionary<MapDefinition, BpfMap>();
        try
        {
            foreach (MapDefinition definition in KernelObjects.Maps)
                opened[definition] = pins.TryOpenMap(definition)
                    ?? throw new TcpFreezeException($"open {pins.PathOf(definition)}", "the pin is missing", remedy: TcpFreezeRemedy.Rebuild);
            return new FreezerMaps(opened);
        }
        catch
        {
            foreach (BpfMap map in opened.Values)
                map.Dispose();
            throw;
        }
    }

    private static BpfMap PinNew(BpfMap map, string path, List<string> createdPins)
    {
        try
        {
            map.Pin(path);
        }
        catch
        {
            map.Dispose();
            throw;
        }
        createdPins.Add(path);
        return map;
    }

    private static BpfProgram RePin(BpfProgram program, string path, List<string> createdPins)
    {
        try
        {
            if (BpfFs.Unpin(path) == false)
                createdPins.Add(path);
            program.Pin(path);
            return program;
        }
        catch
        {
            program.Dispose();
            throw;
        }
    }

    public void DisposePrograms()
    {
        if (_programs is null)
            return;
        foreach (BpfProgram program in _programs.Values)
            program.Dispose();
        _programs = null;
    }

    public void DisposeAll()
    {
        DisposePrograms();
        foreach (BpfMap map in _maps.Values)
            map.Dispose();
    }
}
