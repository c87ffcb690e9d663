using Ebpf.Interop;

namespace TcpFreeze;

/// <summary>
/// The kernel objects of one namespace's pin directory, one per row of
/// <see cref="KernelObjects"/>. Maps that are pinned already are reused (they hold the
/// frozen set); if anything is missing, the programs are loaded afresh on top of the
/// surviving maps, so programs and maps always agree.
/// </summary>
internal sealed class PinnedObjects
{
    private readonly BpfMap[] _maps;
    private BpfProgram[]? _programs;

    private PinnedObjects(BpfMap[] maps, BpfProgram[] programs)
    {
        _maps = maps;
        _programs = programs;
    }

    /// <summary>The program of <paramref name="definition"/>; only until <see cref="DisposePrograms"/>.</summary>
    public BpfProgram Program(ProgramDefinition definition)
        => (_programs ?? throw new ObjectDisposedException(nameof(PinnedObjects)))[Array.IndexOf(KernelObjects.Programs, definition)];

    /// <summary>Hands the maps over to a <see cref="FreezerMaps"/>, which owns them from now on.</summary>
    public FreezerMaps TakeMaps() => new(_maps);

    public static PinnedObjects OpenOrLoad(string directory, FreezerOptions options, List<string> createdPins)
    {
        var maps = new BpfMap?[KernelObjects.Maps.Length];
        var programs = new BpfProgram?[KernelObjects.Programs.Length];
        try
        {
            for (int i = 0; i < maps.Length; i++)
                maps[i] = TryOpenMap(directory, KernelObjects.Maps[i]);
            for (int i = 0; i < programs.Length; i++)
                programs[i] = TryOpenProgram(Path.Combine(directory, KernelObjects.Programs[i].PinName));
            if (Array.TrueForAll(maps, m => m is not null) && Array.TrueForAll(programs, p => p is not null))
                return new PinnedObjects(maps!, programs!);

            using BpfObject obj = BpfObject.Open(BpfNames.LoadObject(), "tcpfreeze");
            for (int i = 0; i < maps.Length; i++)
            {
                MapDefinition definition = KernelObjects.Maps[i];
                if (maps[i] is { } existing)
                    obj.ReuseMap(definition.MapName, existing);
                else if (definition.Capacity is { } capacity)
                    obj.SetMaxEntries(definition.MapName, capacity(options));
            }
            obj.Load();

            bool configCreated = maps[Array.IndexOf(KernelObjects.Maps, KernelObjects.Config)] is null;
            for (int i = 0; i < maps.Length; i++)
                maps[i] ??= PinNew(obj.GetMap(KernelObjects.Maps[i].MapName), Path.Combine(directory, KernelObjects.Maps[i].PinName), createdPins);
            // Surviving endpoint entries must be enforced by the new programs.
            if (configCreated && !maps[Array.IndexOf(KernelObjects.Maps, KernelObjects.Endpoints)]!.IsEmpty())
                FreezerMaps.OpenEndpointGate(maps[Array.IndexOf(KernelObjects.Maps, KernelObjects.Config)]!.As<uint, ulong>());

            // Fresh programs use exactly these maps; older program pins may not.
            for (int i = 0; i < programs.Length; i++)
            {
                programs[i]?.Dispose();
                programs[i] = null;
                programs[i] = RePin(obj.GetProgram(KernelObjects.Programs[i].ProgramName), Path.Combine(directory, KernelObjects.Programs[i].PinName), createdPins);
            }
            return new PinnedObjects(maps!, programs!);
        }
        catch
        {
            foreach (BpfMap? map in maps)
                map?.Dispose();
            foreach (BpfProgram? program in programs)
                program?.Dispose();
            throw;
        }
    }

    /// <summary>Opens every map from its pin.</summary>
    /// <exception cref="TcpFreezeException">A pin is missing or has the wrong layout.</exception>
    public static FreezerMaps OpenMaps(string directory)
    {
        var opened = new List<BpfMap>();
        try
        {
            foreach (MapDefinition definition in KernelObjects.Maps)
                opened.Add(TryOpenMap(directory, definition)
                    ?? throw new TcpFreezeException($"open {Path.Combine(directory, definition.PinName)}", "the pin is missing", remedy: TcpFreezeRemedy.Rebuild));
            return new FreezerMaps(opened);
        }
        catch
        {
            foreach (BpfMap map in opened)
                map.Dispose();
            throw;
        }
    }

    /// <summary>The map of <paramref name="definition"/> from its pin, its layout checked; null when there is no pin.</summary>
    public static BpfMap? TryOpenMap(string directory, MapDefinition definition)
    {
        string path = Path.Combine(directory, definition.PinName);
        if (!File.Exists(path))
            return null;
        BpfMap map = BpfMap.OpenPinned(path);
        try
        {
            definition.CheckLayout(map, path);
        }
        catch
        {
            map.Dispose();
            throw;
        }
        return map;
    }

    private static BpfProgram? TryOpenProgram(string path) => File.Exists(path) ? BpfProgram.OpenPinned(path) : null;

    /// <summary>The id of the program pinned for <paramref name="definition"/>; 0 when there is none or it cannot be opened.</summary>
    public static uint TryPinnedProgramId(string directory, ProgramDefinition definition)
    {
        try
        {
            using BpfProgram? program = TryOpenProgram(Path.Combine(directory, definition.PinName));
            return program?.Info.Id ?? 0;
        }
        catch (BpfException)
        {
            return 0;
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
        foreach (BpfProgram program in _programs)
            program.Dispose();
        _programs = null;
    }

    public void DisposeAll()
    {
        DisposePrograms();
        foreach (BpfMap map in _maps)
            map.Dispose();
    }
}
