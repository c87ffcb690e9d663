using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.Packages;

/// <summary>
/// The packages as CI makes them: a fresh <c>git clone</c> of this checkout (what .ci/run starts from; so only
/// committed work is packed), then <c>CI=true scripts/pack.sh</c> into a folder of its own. Made once for all
/// the package tests (about two minutes here).
/// </summary>
public sealed class PackedClone : IDisposable
{
    private readonly TempDirectory _folder = new();

    public PackedClone()
    {
        Clone = Path.Combine(_folder.Path, "clone");
        Packages = Path.Combine(_folder.Path, "packages");
        (int code, string output, string error) = Run.Capture("git", ["clone", "--quiet", Repository.Root, Clone], null, TimeSpan.FromMinutes(2));
        if (code != 0)
        {
            Result = (code, output, "git clone: " + error);
            return;
        }
        Head = Run.Checked("git", "-C", Clone, "rev-parse", "HEAD").Trim();
        var environment = new Dictionary<string, string>
        {
            ["CI"] = "true",
            // No MSBuild node or compiler server outlives the pack (they would keep the clone's files open).
            ["MSBUILDDISABLENODEREUSE"] = "1", ["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0", ["UseSharedCompilation"] = "false",
        };
        Result = Run.Capture("bash", [Path.Combine(Clone, "scripts", "pack.sh"), Packages], environment, TimeSpan.FromMinutes(20));
    }

    /// <summary>The clone the packages were made from.</summary>
    public string Clone { get; }

    /// <summary>The folder scripts/pack.sh wrote the packages into.</summary>
    public string Packages { get; }

    /// <summary>The commit the clone is at.</summary>
    public string Head { get; } = "";

    /// <summary>scripts/pack.sh's (or git clone's) exit code and output.</summary>
    public (int ExitCode, string Output, string Error) Result { get; }

    /// <summary>A scratch folder next to the clone, removed with it.</summary>
    public string Scratch(string name)
    {
        string path = Path.Combine(_folder.Path, name);
        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>Fails the calling test unless packing worked.</summary>
    public void AssertPacked()
        => Assert.True(Result.ExitCode == 0, $"CI=true scripts/pack.sh in a fresh clone exited {Result.ExitCode}: {Result.Error}{Result.Output}");

    /// <summary>The package file of <paramref name="id"/> (one version: the clone's).</summary>
    public string Package(string id, string extension = ".nupkg")
    {
        string[] matches = Directory.GetFiles(Packages, $"{id}.*{extension}")
            .Where(path => Version(path, id, extension) is { Length: > 0 } v && char.IsAsciiDigit(v[0]))
            .ToArray();
        Assert.True(matches.Length == 1, $"expected one {id} package in {Packages}, found: {string.Join(", ", Directory.GetFiles(Packages).Select(Path.GetFileName))}");
        return matches[0];
    }

    /// <summary>The version part of a package file name.</summary>
    public static string Version(string path, string id, string extension = ".nupkg")
    {
        string name = Path.GetFileName(path);
        return name.StartsWith(id + ".", StringComparison.Ordinal) && name.EndsWith(extension, StringComparison.Ordinal)
            ? name[(id.Length + 1)..^extension.Length]
            : "";
    }

    public void Dispose() => _folder.Dispose();
}
