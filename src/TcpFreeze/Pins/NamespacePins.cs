using System.Globalization;
using TcpFreeze.Ebpf.Interop;

namespace TcpFreeze;

/// <summary>
/// One namespace's pinned state, PIN_ROOT/netns-COOKIE: the one place its paths are built
/// (a pin is the directory and a row of <see cref="KernelObjects"/>), the pin root's lock,
/// opening or loading the kernel objects, recovery through the programs, inspection, and removal.
/// Pins outlive every process and are gone after a reboot; <see cref="Remove"/> (detach, gc) is
/// their only other end.
/// </summary>
internal sealed class NamespacePins
{
    private const string DirectoryPrefix = "netns-";

    /// <summary>The pin root as the options name it (the lock reports it that way).</summary>
    private readonly string? _pinRoot;

    private NamespacePins(string? pinRoot, string directory)
    {
        _pinRoot = pinRoot;
        Directory = directory;
    }

    /// <summary>The pinned state of <paramref name="options"/>' namespace (entering it for its cookie).</summary>
    public static NamespacePins For(FreezerOptions options)
        => new(options.PinRoot, Path.Combine(Path.GetFullPath(options.PinRoot), DirectoryPrefix + options.Namespace.Cookie));

    /// <summary>The pinned state in <paramref name="directory"/>, a netns-COOKIE directory found on disk.</summary>
    public static NamespacePins At(string directory) => new(null, directory);

    /// <summary>The names of namespace directories, for enumerating a pin root.</summary>
    public const string DirectoryPattern = DirectoryPrefix + "*";

    /// <summary>The cookie a namespace directory (found with <see cref="DirectoryPattern"/>) is named by; false for other names.</summary>
    public static bool TryParseCookie(string directory, out ulong cookie)
        => ulong.TryParse(Path.GetFileName(directory).AsSpan(DirectoryPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out cookie);

    /// <summary>The directory holding the namespace's pins.</summary>
    public string Directory { get; }

    public string PathOf(MapDefinition definition) => PathOf(definition.PinName);

    public string PathOf(ProgramDefinition definition) => PathOf(definition.PinName);

    /// <summary>The path of the pin named <paramref name="pinName"/> (one of <see cref="KernelObjects.PinNames"/>).</summary>
    public string PathOf(string pinName) => Path.Combine(Directory, pinName);

    /// <summary>Whether the maps that hold the frozen set are pinned.</summary>
    public bool HasMaps => File.Exists(PathOf(KernelObjects.Connections)) && File.Exists(PathOf(KernelObjects.Endpoints));

    /// <summary>Creates the directory (mode 0700: the pins are root's) if it is missing; true when this call created it.</summary>
    public bool CreateDirectory()
    {
        if (System.IO.Directory.Exists(Directory))
            return false;
        System.IO.Directory.CreateDirectory(Directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return true;
    }

    /// <summary>Why a freezer cannot be opened here when <see cref="HasMaps"/> is false: the pins unreadable, bpffs not mounted, or nothing attached.</summary>
    public TcpFreezeException WhyNoMaps(FreezerOptions options)
    {
        // The pins are root's (mode 0700): to anyone else they look absent, which is not "nothing is attached".
        if (Unreadable(Directory) is { } denied)
            return new TcpFreezeException("open the frozen set", denied);
        string why = BpfFs.IsBpfFs(BpfFs.DefaultMountPoint) || !options.PinRoot.StartsWith(BpfFs.DefaultMountPoint, StringComparison.Ordinal)
            ? $"nothing is attached in {options.Namespace} (no pins in {Directory})"
            : $"bpffs is not mounted on {BpfFs.DefaultMountPoint}, so no TcpFreeze state exists";
        return new TcpFreezeException("open the frozen set", why, remedy: TcpFreezeRemedy.Attach);
    }

    /// <summary>
    /// Why this process cannot see what is in <paramref name="path"/> (a pin root or a pin
    /// directory), or null. The deepest folder of the path that this process can see is
    /// listed: a folder it may not list (bpffs mounted with mode 0700, the pin directories'
    /// own 0700) hides everything below it, which is not the same as nothing being there.
    /// </summary>
    public static string? Unreadable(string path)
    {
        for (string? folder = Path.GetFullPath(path); folder is not null; folder = Path.GetDirectoryName(folder))
        {
            if (!System.IO.Directory.Exists(folder))
                continue; // absent, or a parent hides it: look one level up
            try
            {
                _ = System.IO.Directory.EnumerateFileSystemEntries(folder).Any();
                return null;
            }
            catch (Exception e) when (e is UnauthorizedAccessException or IOException)
            {
                return $"permission denied on {folder}, so whether anything is attached or frozen cannot be seen: " +
                       "TcpFreeze's pins are for root only; run as root (or with CAP_DAC_OVERRIDE, CAP_BPF and CAP_NET_ADMIN)";
            }
        }
        return null;
    }

    /// <summary>Removes <paramref name="directory"/> (a pin directory or root this process created) if it is empty.</summary>
    public static void TryRemoveEmptyDirectory(string directory)
    {
        try
        {
            if (System.IO.Directory.Exists(directory) && !System.IO.Directory.EnumerateFileSystemEntries(directory).Any())
                System.IO.Directory.Delete(directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // someone else started using it meanwhile
        }
    }

    /// <summary>The pin root's exclusive lock (see <see cref="PinLock"/>).</summary>
    public PinLock Lock(TimeSpan timeout) => PinLock.Acquire(_pinRoot ?? Path.GetDirectoryName(Directory)!, timeout);

    /// <summary>This process's shared hold on the directory (see <see cref="PinDirectoryUse"/>); null when it cannot be taken.</summary>
    public PinDirectoryUse? TakeUse(TimeSpan timeout) => PinDirectoryUse.TryTake(Directory, timeout);

    /// <summary>Opens the pinned maps and programs, loading whatever is missing (see <see cref="PinnedObjects"/>).</summary>
    public PinnedObjects OpenOrLoad(FreezerOptions options, List<string> createdPins) => PinnedObjects.OpenOrLoad(this, options, createdPins);

    /// <summary>Opens every map from its pin.</summary>
    /// <exception cref="TcpFreezeException">A pin is missing or has the wrong layout.</exception>
    public FreezerMaps OpenMaps() => PinnedObjects.OpenMaps(this);

    /// <summary>Opens every map from its pin or, where the pin is gone, through TcpFreeze's programs (see <see cref="LeftoverStateInspector"/>).</summary>
    public FreezerMaps OpenForRecovery(FreezerOptions options, List<string> unpinned) => LeftoverStateInspector.OpenMaps(options, this, unpinned);

    /// <summary>What is left in the namespace; changes nothing.</summary>
    public AttachmentState Inspect(FreezerOptions options) => LeftoverStateInspector.Inspect(options, this);

    /// <summary>The map of <paramref name="definition"/> from its pin, its layout checked; null when there is no pin.</summary>
    public BpfMap? TryOpenMap(MapDefinition definition)
    {
        string path = PathOf(definition);
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

    /// <summary>The program pinned for <paramref name="definition"/>; null when there is no pin.</summary>
    public BpfProgram? TryOpenProgram(ProgramDefinition definition)
    {
        string path = PathOf(definition);
        return File.Exists(path) ? BpfProgram.OpenPinned(path) : null;
    }

    /// <summary>The id of the program pinned for <paramref name="definition"/>; 0 when there is none or it cannot be opened.</summary>
    public uint TryPinnedProgramId(ProgramDefinition definition)
    {
        try
        {
            using BpfProgram? program = TryOpenProgram(definition);
            return program?.Info.Id ?? 0;
        }
        catch (BpfException)
        {
            return 0;
        }
    }

    /// <summary>
    /// Unpins every TcpFreeze pin and removes the directory if that leaves it empty (files
    /// TcpFreeze did not create stay, and with them the directory); returns how many pins.
    /// </summary>
    public int Remove()
    {
        if (!System.IO.Directory.Exists(Directory))
            return 0;
        int pins = 0;
        foreach (string pin in KernelObjects.PinNames)
            if (BpfFs.Unpin(PathOf(pin)))
                pins++;
        if (!System.IO.Directory.EnumerateFileSystemEntries(Directory).Any())
            System.IO.Directory.Delete(Directory);
        return pins;
    }

    public override string ToString() => Directory;
}
