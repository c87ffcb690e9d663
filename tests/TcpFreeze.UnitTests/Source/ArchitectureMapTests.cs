using System.Text.RegularExpressions;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// ARCHITECTURE.md is a map of the library's rooms: a maintainer must find each type it names in the room it names.
/// Each row of the table under "TcpFreeze (src/TcpFreeze)" names a folder and, in backticks, what that folder owns:
/// every such name must occur in the folder's code, and a type the library declares must be declared there, not in
/// another room. A row that mentions another room's type writes it with its room (`Pins/KernelObjects`), and that is
/// checked against that room. So a type that moves, or a row that names one that is gone, fails here.
/// </summary>
public sealed partial class ArchitectureMapTests
{
    [Fact]
    public void Every_name_in_the_library_rooms_table_is_found_in_the_room_it_is_listed_under()
    {
        string root = Repository.Root;
        string markdown = File.ReadAllText(Path.Combine(root, "ARCHITECTURE.md"));
        Assert.True(RoomRows(markdown).Count() >= 7, "the rooms table lists every folder of src/TcpFreeze");

        string[] problems = Problems(Path.Combine(root, "src", "TcpFreeze"), markdown);

        Assert.True(problems.Length == 0, $"ARCHITECTURE.md's rooms table is not true of the code:\n{string.Join('\n', problems)}");
    }

    [Fact]
    public void A_type_listed_under_another_room_a_name_that_is_gone_and_a_missing_room_are_reported()
    {
        using var library = new TempDirectory();
        Directory.CreateDirectory(library.File("Keys"));
        Directory.CreateDirectory(library.File("Freezing"));
        library.Write("Keys/ConnectionKey.cs", "namespace T;\npublic readonly record struct ConnectionKey { public static ConnectionKey Parse(string s) => default; }\n");
        library.Write("Freezing/TcpFreezer.cs", "namespace T;\n// the class Helper of a comment declares nothing\npublic sealed class TcpFreezer { private T Run<T>(System.Func<T> f) => f(); }\ninternal sealed class FrozenSet<TKey> { }\n");
        const string markdown = """
            ## TcpFreeze (src/TcpFreeze)

            | room | owns |
            |---|---|
            | `Keys/` | `ConnectionKey` (`ConnectionKey.Parse`, `IParsable`), `FrozenSet<TKey>`, `Helper`, `Keys.cs`, `PIN_ROOT/x` |
            | `Freezing/` | `TcpFreezer` (every member through `Run`), `Gone`, over `Keys/ConnectionKey` and `Keys/FrozenSet` |
            | `Pins/` | `NamespacePins` |

            ## Next

            | `Other/` | `NotChecked` |
            """;

        Assert.Equal(["Keys: ConnectionKey Parse IParsable FrozenSet Helper", "Freezing: TcpFreezer Run Gone Keys/ConnectionKey Keys/FrozenSet", "Pins: NamespacePins"],
            RoomRows(markdown).Select(row => $"{row.Room}: {string.Join(' ', row.Names)}"));
        Assert.Equal(
        [
            "Keys/: `IParsable` does not occur in Keys/'s code",
            "Keys/: `FrozenSet` is declared in Freezing/",
            "Keys/: `Helper` does not occur in Keys/'s code",
            "Freezing/: `Gone` does not occur in Freezing/'s code",
            "Freezing/: `Keys/FrozenSet` is declared in Freezing/",
            "Pins/: no such folder in src/TcpFreeze",
        ], Problems(library.Path, markdown));
    }

    /// <summary>What in the rooms table of <paramref name="markdown"/> is not true of the library in <paramref name="library"/>.</summary>
    private static string[] Problems(string library, string markdown)
    {
        Dictionary<string, string> declaredIn = Declarations(library);
        var codeOf = new Dictionary<string, string>(); // each room's code, read once
        var problems = new List<string>();
        foreach ((string room, string[] names) in RoomRows(markdown))
        {
            string folder = Path.Combine(library, room);
            if (!Directory.Exists(folder))
            {
                problems.Add($"{room}/: no such folder in src/TcpFreeze");
                continue;
            }
            foreach (string written in names)
            {
                // `Room/Name`: another room's type, checked against that room.
                int slash = written.IndexOf('/');
                string where = slash < 0 ? room : written[..slash], name = written[(slash + 1)..];
                if (!codeOf.TryGetValue(where, out string? code))
                    codeOf[where] = code = CodeOf(Path.Combine(library, where));
                if (declaredIn.TryGetValue(name, out string? home) && home != where)
                    problems.Add($"{room}/: `{written}` is declared in {home}/");
                else if (!Regex.IsMatch(code, $@"\b{Regex.Escape(name)}\b"))
                    problems.Add($"{room}/: `{written}` does not occur in {where}/'s code");
            }
        }
        return [.. problems];
    }

    private static string CodeOf(string folder)
        => Directory.Exists(folder)
            ? string.Join('\n', Directory.EnumerateFiles(folder, "*.cs", SearchOption.AllDirectories).Select(File.ReadAllText))
            : "";

    /// <summary>The rows of the library's rooms table: the folder and the identifiers named in backticks.</summary>
    private static IEnumerable<(string Room, string[] Names)> RoomRows(string markdown)
    {
        int start = markdown.IndexOf("## TcpFreeze (src/TcpFreeze)", StringComparison.Ordinal);
        Assert.True(start >= 0, "the page has no section '## TcpFreeze (src/TcpFreeze)'");
        int end = markdown.IndexOf("\n## ", start + 1, StringComparison.Ordinal);
        string section = end < 0 ? markdown[start..] : markdown[start..end];
        foreach (Match row in RoomRow().Matches(section))
        {
            // Code names only: `Type`, `Type<T, U>`, `Type.Member`, and `Room/Type` for another room's (not file names,
            // paths or other text in backticks).
            string[] names = Backticked().Matches(row.Groups["owns"].Value)
                .Select(m => CodeName().Match(m.Groups[1].Value))
                .Where(m => m.Success)
                .SelectMany(m => Identifier().Matches(m.Groups["name"].Value)
                    .Select(i => i.Value)
                    .Where(n => char.IsUpper(n[0]) && n is not "TKey" and not "TValue")
                    .Select(n => m.Groups["room"].Success ? $"{m.Groups["room"].Value}/{n}" : n))
                .Distinct()
                .ToArray();
            yield return (row.Groups["room"].Value, names);
        }
    }

    /// <summary>Each type declared in the library, with the room (top folder) that declares it.</summary>
    private static Dictionary<string, string> Declarations(string library)
    {
        var declared = new Dictionary<string, string>();
        foreach (string file in Directory.EnumerateFiles(library, "*.cs", SearchOption.AllDirectories))
        {
            string relative = Path.GetRelativePath(library, file);
            if (relative.StartsWith("obj", StringComparison.Ordinal) || relative.StartsWith("bin", StringComparison.Ordinal) || !relative.Contains(Path.DirectorySeparatorChar))
                continue;
            string room = relative[..relative.IndexOf(Path.DirectorySeparatorChar)];
            foreach (string line in File.ReadLines(file).Where(l => !l.TrimStart().StartsWith("//", StringComparison.Ordinal)))
                foreach (Match declaration in TypeDeclaration().Matches(line))
                    declared.TryAdd(declaration.Groups[1].Value, room);
        }
        return declared;
    }

    [GeneratedRegex(@"^\|\s*`(?<room>[A-Za-z]+)/`\s*\|(?<owns>.*)\|\s*$", RegexOptions.Multiline)]
    private static partial Regex RoomRow();

    [GeneratedRegex("`([^`]+)`")]
    private static partial Regex Backticked();

    [GeneratedRegex(@"^((?<room>[A-Z][A-Za-z]*)/)?(?<name>[A-Z][A-Za-z0-9]*(<[A-Za-z, ]+>)?(\.[A-Z][A-Za-z0-9]*)?)$")]
    private static partial Regex CodeName();

    [GeneratedRegex(@"[A-Za-z_][A-Za-z0-9_]*")]
    private static partial Regex Identifier();

    [GeneratedRegex(@"\b(?:class|struct|record|enum|interface)\s+([A-Z][A-Za-z0-9_]*)")]
    private static partial Regex TypeDeclaration();
}
