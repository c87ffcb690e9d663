using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.Install;

/// <summary>
/// scripts/install.sh run once the way an operator runs it (it publishes both NativeAOT binaries from this
/// checkout), into a root folder of its own. The binaries are also copied aside, so that the other tests install
/// them again with <c>--from</c> instead of publishing each time (a NativeAOT publish takes a minute or more here).
/// </summary>
public sealed class InstalledOnce : IDisposable
{
    private readonly TempDirectory _folder = new();

    public InstalledOnce()
    {
        Root = Path.Combine(_folder.Path, "root");
        Published = Path.Combine(_folder.Path, "published");
        Directory.CreateDirectory(Root);
        Directory.CreateDirectory(Published);
        Result = Installer.Run(TimeSpan.FromMinutes(15), "--root", Root);
        if (Result.ExitCode != 0)
            return; // the test that checks this install reports it
        foreach (string name in Installer.Binaries)
            File.Copy(Path.Combine(Root, "usr/local/bin", name), Path.Combine(Published, name));
    }

    /// <summary>The root the installer published into (default prefix /usr/local, no options).</summary>
    public string Root { get; }

    /// <summary>A folder holding copies of the published tcpfreeze, tcpfreeze-criu-hook and its engine, for <c>--from</c>.</summary>
    public string Published { get; }

    /// <summary>The installer's exit code and output.</summary>
    public (int ExitCode, string Output, string Error) Result { get; }

    /// <summary>Fails the calling test unless the install worked.</summary>
    public void AssertInstalled()
        => Assert.True(Result.ExitCode == 0, $"scripts/install.sh --root {Root} exited {Result.ExitCode}: {Result.Error}{Result.Output}");

    public void Dispose() => _folder.Dispose();
}

/// <summary>Runs scripts/install.sh of this checkout.</summary>
public static class Installer
{
    public static readonly string[] Binaries = ["tcpfreeze", "tcpfreeze-criu-hook", "tcpfreeze-criu-hook-engine"];

    public static string Script => Path.Combine(Repository.Root, "scripts", "install.sh");

    public static (int ExitCode, string Output, string Error) Run(TimeSpan timeout, params string[] arguments)
        => Infrastructure.Run.Capture("bash", [Script, .. arguments], null, timeout);

    public static (int ExitCode, string Output, string Error) Run(params string[] arguments) => Run(TimeSpan.FromMinutes(2), arguments);

    public static void Succeeds(params string[] arguments)
    {
        (int code, string output, string error) = Run(arguments);
        Assert.True(code == 0, $"install.sh {string.Join(' ', arguments)} exited {code}: {error}{output}");
    }

    /// <summary>Every file, folder and link under <paramref name="root"/> with its mode and content hash, to compare before and after.</summary>
    public static SortedDictionary<string, string> Snapshot(string root)
    {
        var entries = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (string path in Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories))
        {
            var info = new FileInfo(path);
            string relative = "/" + Path.GetRelativePath(root, path);
            string mode = File.GetUnixFileMode(path).ToString();
            if (info.LinkTarget is { } target)
                entries[relative] = $"link -> {target}";
            else if (Directory.Exists(path))
                entries[relative] = $"dir {mode}";
            else
                entries[relative] = $"file {mode} {Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(path)))}";
        }
        return entries;
    }
}
