using TcpFreeze.Ebpf.Interop;

namespace TcpFreeze;

/// <summary>Whose an attached program is, as <see cref="ProgramOwnership"/> tells it.</summary>
internal enum ProgramOwner
{
    /// <summary>Nothing is attached.</summary>
    None,

    /// <summary>This pin root's: pinned in its namespace directory, or using the maps pinned there (a program an earlier attach left before it reloaded).</summary>
    Ours,

    /// <summary>TcpFreeze's (by name), pinned nowhere and using no map pinned anywhere: left when its pins were removed. Ours to replace and remove.</summary>
    Orphan,

    /// <summary>TcpFreeze's, pinned (it or its maps) under another pin root: another user's frozen set. Never replaced or removed from here.</summary>
    OtherPinRoot,

    /// <summary>Another tool's program.</summary>
    Foreign,
}

/// <summary>
/// Tells this pin root's TcpFreeze programs from another pin root's in the same
/// namespace. Names are not enough (every pin root loads programs of the same name), so
/// identity is the kernel id: a program is ours when it is pinned in this pin root's
/// netns-COOKIE directory or uses a map pinned there. A TcpFreeze-named program that is
/// not ours belongs to another pin root when it, or one of its maps, is pinned in a
/// netns-COOKIE directory (same cookie) of another pin root anywhere in bpffs
/// (/sys/fs/bpf, searched 6 levels deep, and the bpffs holding this pin root); otherwise
/// it is an orphan (its pins were removed) and recovery may remove it. Pins outside those
/// places are not seen: a pin root elsewhere, whose pins were moved, counts as orphaned.
/// </summary>
internal sealed class ProgramOwnership
{
    private const int SearchDepth = 6;

    private readonly string _directory;
    private readonly HashSet<uint> _ourPrograms = [];
    private readonly HashSet<uint> _ourMaps = [];
    private Dictionary<uint, string>? _others;

    private ProgramOwnership(string directory) => _directory = Path.GetFullPath(directory);

    /// <summary>The ownership view of one namespace's pins (<paramref name="pins"/>).</summary>
    public static ProgramOwnership Of(NamespacePins pins)
    {
        var ownership = new ProgramOwnership(pins.Directory);
        ReadPins(NamespacePins.At(ownership._directory), ownership._ourPrograms, ownership._ourMaps);
        return ownership;
    }

    /// <summary>Also counts <paramref name="mapId"/> (a map this freezer holds) as ours, for freezers whose map pins are gone.</summary>
    public ProgramOwnership WithMap(uint mapId)
    {
        if (mapId != 0)
            _ourMaps.Add(mapId);
        return this;
    }

    /// <summary>Also counts <paramref name="programId"/> (a program this process has just loaded) as ours.</summary>
    public ProgramOwnership WithProgram(uint programId)
    {
        if (programId != 0)
            _ourPrograms.Add(programId);
        return this;
    }

    /// <summary>Whose program <paramref name="id"/> is, if it were attached where <paramref name="definition"/> goes.</summary>
    public ProgramOwner Classify(uint id, ProgramDefinition definition) => Classify(id, definition, out _);

    /// <inheritdoc cref="Classify(uint, ProgramDefinition)"/>
    /// <param name="id">The program's kernel id (0: nothing attached).</param>
    /// <param name="definition">Which of TcpFreeze's programs belongs at that attach point.</param>
    /// <param name="otherDirectory">For <see cref="ProgramOwner.OtherPinRoot"/>: the other pin root's directory that pins it.</param>
    public ProgramOwner Classify(uint id, ProgramDefinition definition, out string? otherDirectory)
    {
        otherDirectory = null;
        if (id == 0)
            return ProgramOwner.None;
        if (_ourPrograms.Contains(id))
            return ProgramOwner.Ours;
        using BpfProgram? program = TryOpen(id);
        if (program is null)
            return ProgramOwner.None; // detached and unloaded meanwhile
        if (program.Info.Name != definition.ProgramName)
            return ProgramOwner.Foreign;
        uint[] maps = program.GetMapIds();
        if (maps.Any(_ourMaps.Contains))
            return ProgramOwner.Ours;
        Dictionary<uint, string> others = Others();
        if (others.TryGetValue(id, out otherDirectory))
            return ProgramOwner.OtherPinRoot;
        foreach (uint map in maps)
            if (others.TryGetValue(map, out otherDirectory))
                return ProgramOwner.OtherPinRoot;
        return ProgramOwner.Orphan;
    }

    /// <summary>Whether program <paramref name="id"/> uses map <paramref name="mapId"/>.</summary>
    public static bool UsesMap(uint id, uint mapId)
    {
        if (id == 0)
            return false;
        using BpfProgram? program = TryOpen(id);
        return program is not null && program.GetMapIds().Contains(mapId);
    }

    /// <summary>Program and map ids pinned in other pin roots' directories for this namespace, with the directory.</summary>
    private Dictionary<uint, string> Others()
    {
        if (_others is not null)
            return _others;
        _others = [];
        string name = Path.GetFileName(_directory);
        var roots = new List<string> { BpfFs.DefaultMountPoint };
        string? ourRoot = Path.GetDirectoryName(_directory);
        if (ourRoot is not null && !ourRoot.StartsWith(BpfFs.DefaultMountPoint + "/", StringComparison.Ordinal))
            roots.Add(Path.GetDirectoryName(ourRoot) ?? ourRoot);
        var options = new EnumerationOptions { RecurseSubdirectories = true, MaxRecursionDepth = SearchDepth, IgnoreInaccessible = true, AttributesToSkip = FileAttributes.ReparsePoint };
        foreach (string root in roots.Where(Directory.Exists))
        {
            IEnumerable<string> found;
            try
            {
                found = Directory.EnumerateDirectories(root, name, options).ToList();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }
            foreach (string directory in found.Select(Path.GetFullPath).Where(d => d != _directory))
            {
                var programs = new HashSet<uint>();
                var maps = new HashSet<uint>();
                ReadPins(NamespacePins.At(directory), programs, maps);
                foreach (uint id in programs.Concat(maps))
                    _others.TryAdd(id, directory);
            }
        }
        return _others;
    }

    private static void ReadPins(NamespacePins pins, HashSet<uint> programs, HashSet<uint> maps)
    {
        foreach (ProgramDefinition definition in KernelObjects.Programs)
        {
            uint id = pins.TryPinnedProgramId(definition);
            if (id != 0)
                programs.Add(id);
        }
        foreach (MapDefinition definition in KernelObjects.Maps)
        {
            string path = pins.PathOf(definition);
            try
            {
                if (!File.Exists(path))
                    continue;
                using BpfMap map = BpfMap.OpenPinned(path);
                maps.Add(map.Info.Id);
            }
            catch (BpfException)
            {
                // not a map pin we can open: it identifies nothing
            }
        }
    }

    private static BpfProgram? TryOpen(uint id)
    {
        try
        {
            return BpfProgram.TryOpenById(id);
        }
        catch (BpfException)
        {
            return null;
        }
    }
}
