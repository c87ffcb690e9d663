using System.Text;

namespace TcpFreeze.CriuHooks;

/// <summary>
/// The CRIU configuration that makes CRIU use the TcpFreeze hook instead of its own
/// network lock: <c>tcp-established</c>, <c>network-lock skip</c> and
/// <c>action-script HOOK</c>, kept in a block between marker comments in one CRIU
/// configuration file, so it can be written, updated and removed without touching
/// the user's other lines.
/// <para>
/// Which file: CRIU always reads <c>default.conf</c>; runc (and podman through it) hands
/// CRIU <c>runc.conf</c> as well, which CRIU reads last. An action script named in both
/// runs twice per step, so the hook belongs in exactly one of them; writing warns when
/// the other one names it too.
/// </para>
/// </summary>
public sealed class CriuConfiguration
{
    /// <summary>Where CRIU, runc and podman look for configuration files.</summary>
    public const string DefaultDirectory = "/etc/criu";

    /// <summary>The hook executable's file name.</summary>
    public const string HookFileName = "tcpfreeze-criu-hook";

    /// <summary>Where the hook is installed when it is not next to the tcpfreeze command.</summary>
    public const string DefaultHookPath = "/usr/local/bin/" + HookFileName;

    /// <summary>The comment line that opens the managed block.</summary>
    public const string BeginMarker = "# BEGIN tcpfreeze (managed by 'tcpfreeze criu-config')";

    /// <summary>The comment line that closes the managed block.</summary>
    public const string EndMarker = "# END tcpfreeze";

    // Markers are recognised by these prefixes, so an edited explanation after BEGIN still counts.
    private const string BeginPrefix = "# BEGIN tcpfreeze";

    /// <summary>Creates the configuration for one engine, hook and directory.</summary>
    /// <param name="engine">Which engine's file to use.</param>
    /// <param name="hookPath">The hook executable; absolute, no white space or quotes (CRIU splits its lines on white space).</param>
    /// <param name="directory">The configuration directory (tests use a folder of their own).</param>
    /// <exception cref="ArgumentException">The hook path or directory cannot be used.</exception>
    public CriuConfiguration(CriuEngine engine, string hookPath, string directory = DefaultDirectory)
    {
        ArgumentNullException.ThrowIfNull(hookPath);
        ArgumentNullException.ThrowIfNull(directory);
        if (!Enum.IsDefined(engine))
            throw new ArgumentOutOfRangeException(nameof(engine), engine, "not a CRIU engine");
        if (HookPathProblem(hookPath) is { } problem)
            throw new ArgumentException(problem, nameof(hookPath));
        if (directory.Length == 0)
            throw new ArgumentException("the configuration directory is empty", nameof(directory));
        Engine = engine;
        HookPath = hookPath;
        Directory = directory;
    }

    /// <summary>The engine whose file this configuration uses.</summary>
    public CriuEngine Engine { get; }

    /// <summary>The hook executable named by the <c>action-script</c> line.</summary>
    public string HookPath { get; }

    /// <summary>The configuration directory.</summary>
    public string Directory { get; }

    /// <summary>The file the block goes into.</summary>
    public string FilePath => Path.Combine(Directory, FileNameFor(Engine));

    /// <summary>The other file CRIU may read, which must not name the hook as well.</summary>
    public string OtherFilePath => Path.Combine(Directory, FileNameFor(Engine == CriuEngine.Criu ? CriuEngine.Runc : CriuEngine.Criu));

    /// <summary>The configuration lines, one CRIU option each.</summary>
    public IReadOnlyList<string> Lines => ["tcp-established", "network-lock skip", $"action-script {HookPath}"];

    /// <summary>The managed block as written into the file: markers around <see cref="Lines"/>, each line ending in '\n'.</summary>
    public string Block => string.Concat([BeginMarker, "\n", .. Lines.Select(line => line + "\n"), EndMarker, "\n"]);

    /// <summary>The configuration file name an engine uses: default.conf for CRIU, runc.conf for runc and podman.</summary>
    public static string FileNameFor(CriuEngine engine) => engine switch
    {
        CriuEngine.Criu => "default.conf",
        CriuEngine.Runc or CriuEngine.Podman => "runc.conf",
        _ => throw new ArgumentOutOfRangeException(nameof(engine), engine, "not a CRIU engine"),
    };

    /// <summary>Why <paramref name="hookPath"/> cannot be named in a CRIU configuration file, or null when it can.</summary>
    public static string? HookPathProblem(string hookPath)
    {
        ArgumentNullException.ThrowIfNull(hookPath);
        if (!hookPath.StartsWith('/'))
            return $"the hook path must be absolute (CRIU runs action scripts from a working directory of its own), not '{hookPath}'";
        if (hookPath.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c == '"'))
            return $"the hook path '{hookPath.ReplaceLineEndings(" ")}' has white space, a control character or a quote, which a CRIU configuration line cannot carry; install the hook under a plainer path";
        return null;
    }

    /// <summary>
    /// The hook to name by default: the one installed next to the tcpfreeze command
    /// (<paramref name="commandDirectory"/>) if it is there, else <see cref="DefaultHookPath"/>.
    /// </summary>
    public static string FindHook(string? commandDirectory)
    {
        if (!string.IsNullOrEmpty(commandDirectory))
        {
            string beside = Path.GetFullPath(Path.Combine(commandDirectory, HookFileName));
            if (File.Exists(beside))
                return beside;
        }
        return DefaultHookPath;
    }

    /// <summary>
    /// Writes the block into <see cref="FilePath"/>: replaces an existing block in place,
    /// or appends one (creating the directory and a 0644 file when missing). Lines outside
    /// the block are never changed. The file is replaced atomically (a temporary file
    /// next to it, then a rename; a symbolic link is followed and its target replaced),
    /// keeping its permission bits.
    /// </summary>
    /// <exception cref="CriuConfigurationException">The file's own lines contradict the hook (e.g. <c>network-lock iptables</c>), or its markers are damaged.</exception>
    /// <exception cref="IOException">The file cannot be read or written.</exception>
    /// <exception cref="UnauthorizedAccessException">Writing needs more rights (usually root).</exception>
    public CriuConfigurationChange Write()
    {
        ConfigFile target = ConfigFile.Load(FilePath);
        if (target.Problem is { } problem)
            throw new CriuConfigurationException($"refusing to write {FilePath}: {problem}");
        List<ConfigLine> conflicts = target.Outside.Where(Contradicts).ToList();
        if (conflicts.Count > 0)
            throw new CriuConfigurationException(
                $"refusing to write {FilePath}: its own {(conflicts.Count == 1 ? "line" : "lines")} " +
                string.Join(", ", conflicts.Select(c => $"{c.Number} '{ByteText.ToText(c.Text)}'")) +
                $" {(conflicts.Count == 1 ? "contradicts" : "contradict")} the hook, which replaces CRIU's network lock ('network-lock skip') and needs 'tcp-established'; " +
                $"remove or change {(conflicts.Count == 1 ? "it" : "them")}, then run this again");

        var warnings = new List<string>();
        warnings.AddRange(HookLinesOutsideBlock(target));
        warnings.AddRange(OtherFileWarnings());
        if (!File.Exists(HookPath))
            warnings.Add($"{HookPath} does not exist (yet): CRIU fails every dump and restore whose action script cannot run; install the hook there or pass --hook");

        string block = ByteText.FromText(Block);
        string content;
        CriuConfigurationOutcome outcome;
        if (target.Block is { } existing)
        {
            content = string.Concat(target.Content.AsSpan(0, existing.Start), block, target.Content.AsSpan(existing.End));
            outcome = content == target.Content ? CriuConfigurationOutcome.Unchanged : CriuConfigurationOutcome.Replaced;
        }
        else
        {
            // A last line without its newline gets one, so the block starts on a line of its own.
            string separator = target.Content.Length > 0 && !target.Content.EndsWith('\n') ? "\n" : "";
            content = target.Content + separator + block;
            outcome = target.Exists ? CriuConfigurationOutcome.Added : CriuConfigurationOutcome.Created;
        }
        if (outcome != CriuConfigurationOutcome.Unchanged)
            WriteAtomically(FilePath, content, target.Exists);
        return new CriuConfigurationChange(FilePath, outcome, warnings);
    }

    /// <summary>
    /// Removes the block from <see cref="FilePath"/>, leaving every other byte as it was.
    /// A missing file or block is not an error.
    /// </summary>
    /// <exception cref="CriuConfigurationException">The block's markers are damaged (e.g. a BEGIN line without its END line).</exception>
    /// <exception cref="IOException">The file cannot be read or written.</exception>
    /// <exception cref="UnauthorizedAccessException">Writing needs more rights (usually root).</exception>
    public CriuConfigurationChange Remove()
    {
        ConfigFile target = ConfigFile.Load(FilePath);
        if (target.Problem is { } problem)
            throw new CriuConfigurationException($"refusing to change {FilePath}: {problem}");
        List<string> warnings = HookLinesOutsideBlock(target)
            .Select(w => w + " (it stays: only the managed block is removed)").ToList();
        if (target.Block is not { } block)
            return new CriuConfigurationChange(FilePath, CriuConfigurationOutcome.NothingToRemove, warnings);
        string content = string.Concat(target.Content.AsSpan(0, block.Start), target.Content.AsSpan(block.End));
        // A file that held only the block (--write created it) goes with it, unless it is a link someone made.
        if (content.Length == 0 && new FileInfo(FilePath).LinkTarget is null)
        {
            File.Delete(FilePath);
            return new CriuConfigurationChange(FilePath, CriuConfigurationOutcome.Removed, warnings) { FileDeleted = true };
        }
        WriteAtomically(FilePath, content, exists: true);
        return new CriuConfigurationChange(FilePath, CriuConfigurationOutcome.Removed, warnings);
    }

    private IEnumerable<string> HookLinesOutsideBlock(ConfigFile file)
        => file.Outside.Where(NamesHook).Select(line =>
            $"{file.Path}:{line.Number} already names {ByteText.ToText(line.Value!)} as an action script outside the tcpfreeze block, " +
            "so CRIU runs the hook twice per step; remove that line");

    private IEnumerable<string> OtherFileWarnings()
    {
        ConfigFile other = ConfigFile.Load(OtherFilePath);
        CriuEngine otherEngine = Engine == CriuEngine.Criu ? CriuEngine.Runc : CriuEngine.Criu;
        foreach (ConfigLine line in other.Outside.Where(NamesHook))
            yield return $"{other.Path}:{line.Number} also names {ByteText.ToText(line.Value!)} as an action script; under runc and podman CRIU reads both " +
                         $"{FileNameFor(CriuEngine.Criu)} and {FileNameFor(CriuEngine.Runc)}, so the hook would run twice per step; remove that line";
        foreach (ConfigLine line in other.InBlock.Where(NamesHook))
            yield return $"{other.Path}:{line.Number} (its tcpfreeze block) also names {ByteText.ToText(line.Value!)} as an action script; under runc and podman CRIU reads both " +
                         $"{FileNameFor(CriuEngine.Criu)} and {FileNameFor(CriuEngine.Runc)}, so the hook would run twice per step; " +
                         $"run 'tcpfreeze criu-config --remove --engine {otherEngine.ToString().ToLowerInvariant()}'";
        // runc.conf is read after default.conf, so its lock wins for containers.
        if (Engine == CriuEngine.Criu)
            foreach (ConfigLine line in other.Outside.Concat(other.InBlock).Where(l => l.Option == "network-lock" && l.Value is not null && l.Value != "skip"))
                yield return $"{other.Path}:{line.Number} sets 'network-lock {ByteText.ToText(line.Value!)}', which runc and podman hand to CRIU after " +
                             $"{FileNameFor(CriuEngine.Criu)}: checkpoints of containers would still use that lock";
    }

    /// <summary>A user line the hook cannot live with.</summary>
    private static bool Contradicts(ConfigLine line)
        => (line.Option == "network-lock" && line.Value != "skip") || line.Option == "no-tcp-established";

    /// <summary>
    /// Whether an action-script line names this hook: the same path, the same file once
    /// links are resolved, or an executable of the same name (another copy of the hook
    /// freezes the same connections).
    /// </summary>
    private bool NamesHook(ConfigLine line)
    {
        if (line.Option != "action-script" || line.Value is null)
            return false;
        string path = ByteText.ToText(line.Value);
        if (path == HookPath || Path.GetFileName(path) == Path.GetFileName(HookPath) || Path.GetFileName(path) == HookFileName)
            return true;
        return Resolve(path) is { } resolved && resolved == Resolve(HookPath);
    }

    private static string? Resolve(string path)
    {
        try
        {
            var file = new FileInfo(path);
            return file.Exists ? (file.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? file.FullName) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return null;
        }
    }

    private static void WriteAtomically(string path, string content, bool exists)
    {
        string target = Path.GetFullPath(path);
        if (exists && new FileInfo(target).ResolveLinkTarget(returnFinalTarget: true) is { } linked)
            target = linked.FullName;
        string directory = Path.GetDirectoryName(target)!;
        const UnixFileMode NewFile = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        const UnixFileMode NewDirectory = NewFile | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
        if (!exists)
            System.IO.Directory.CreateDirectory(directory, NewDirectory);
        UnixFileMode mode = exists ? File.GetUnixFileMode(target) : NewFile;
        string temporary = Path.Combine(directory, $".{Path.GetFileName(target)}.tcpfreeze-{Environment.ProcessId}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = mode }))
            {
                stream.Write(Encoding.Latin1.GetBytes(content));
                stream.Flush(flushToDisk: true);
            }
            File.SetUnixFileMode(temporary, mode); // the umask may have taken bits away
            File.Move(temporary, target, overwrite: true);
        }
        catch
        {
            try
            {
                File.Delete(temporary);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The first failure is the one to report.
            }
            throw;
        }
    }

    /// <summary>One option line: its 1-based number, the option without dashes, its value, and the line as written.</summary>
    private sealed record ConfigLine(int Number, string Option, string? Value, string Text);

    /// <summary>
    /// A configuration file as CRIU reads it. The content is kept as a byte string
    /// (Latin-1: one char per byte), so cutting and splicing it gives back exactly the
    /// bytes that were there, whatever their encoding.
    /// </summary>
    private sealed class ConfigFile
    {
        public required string Path { get; init; }
        public bool Exists { get; init; }
        public string Content { get; init; } = "";
        /// <summary>The managed block: character range from its BEGIN line to the end of its END line (newline included).</summary>
        public (int Start, int End)? Block { get; set; }
        public List<ConfigLine> Outside { get; } = [];
        public List<ConfigLine> InBlock { get; } = [];
        /// <summary>Why the markers cannot be trusted, or null.</summary>
        public string? Problem { get; set; }

        public static ConfigFile Load(string path)
        {
            if (!File.Exists(path))
                return new ConfigFile { Path = path };
            var file = new ConfigFile { Path = path, Exists = true, Content = Encoding.Latin1.GetString(File.ReadAllBytes(path)) };
            file.Analyse();
            return file;
        }

        private void Analyse()
        {
            int? beginOffset = null, beginLine = null;
            int number = 0;
            for (int start = 0; start < Content.Length;)
            {
                number++;
                int newline = Content.IndexOf('\n', start);
                int end = newline < 0 ? Content.Length : newline + 1;
                string text = Content[start..end].TrimEnd('\n', '\r');
                string trimmed = text.Trim();
                if (trimmed.StartsWith(BeginPrefix, StringComparison.Ordinal))
                {
                    if (beginLine is not null)
                        Problem ??= $"line {number} opens a tcpfreeze block while the one opened on line {beginLine} is not closed; fix the markers by hand";
                    else if (Block is not null)
                        Problem ??= $"it has a second tcpfreeze block (line {number}); keep one by hand";
                    beginOffset = start;
                    beginLine = number;
                }
                else if (trimmed == EndMarker)
                {
                    if (beginOffset is null)
                        Problem ??= $"line {number} closes a tcpfreeze block that was never opened ('{BeginMarker}'); fix the markers by hand";
                    else
                        Block ??= (beginOffset.Value, end);
                    beginOffset = null;
                    beginLine = null;
                }
                else if (Parse(number, text) is { } option)
                {
                    (beginLine is null ? Outside : InBlock).Add(option);
                }
                start = end;
            }
            if (beginLine is not null)
                Problem ??= $"line {beginLine} opens a tcpfreeze block but no '{EndMarker}' line closes it; fix the markers by hand";
        }

        /// <summary>
        /// One line the way CRIU's parser reads it: words split on spaces and tabs, a word
        /// starting with '#' ends the line, the first word is the option (CRIU puts "--"
        /// before it), "option=value" or "option value".
        /// </summary>
        private static ConfigLine? Parse(int number, string text)
        {
            string[] words = text.Split([' ', '\t', '\r'], StringSplitOptions.RemoveEmptyEntries);
            int count = Array.FindIndex(words, w => w.StartsWith('#'));
            if (count < 0)
                count = words.Length;
            if (count == 0)
                return null;
            string option = words[0].TrimStart('-');
            string? value = count > 1 ? words[1] : null;
            int equals = option.IndexOf('=');
            if (equals >= 0)
            {
                value = option[(equals + 1)..];
                option = option[..equals];
            }
            if (value is { Length: >= 2 } && value.StartsWith('"') && value.EndsWith('"'))
                value = value[1..^1];
            return new ConfigLine(number, option, value, string.Join(' ', words[..count]));
        }
    }

    /// <summary>Converts between text and the byte strings <see cref="ConfigFile"/> works on.</summary>
    private static class ByteText
    {
        public static string FromText(string text) => Encoding.Latin1.GetString(Encoding.UTF8.GetBytes(text));

        public static string ToText(string bytes) => Encoding.UTF8.GetString(Encoding.Latin1.GetBytes(bytes));
    }
}
