using System.Diagnostics;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.Criu;

/// <summary>
/// CRIU 4.2.1 (built by scripts/setup.sh) and the NativeAOT hook executable, shared by
/// the CRIU tests. The hook comes from $TCPFREEZE_HOOK when scripts/test.sh published
/// it already, otherwise it is published here once.
/// </summary>
public sealed class CriuFixture : IDisposable
{
    private readonly string? _publishDirectory;

    public CriuFixture()
    {
        Criu = FindCriu();
        if (Environment.GetEnvironmentVariable("TCPFREEZE_HOOK") is { Length: > 0 } hook && File.Exists(hook))
        {
            Hook = hook;
        }
        else
        {
            _publishDirectory = Directory.CreateTempSubdirectory("tcpfreeze-hook-").FullName;
            string project = Path.Combine(RepositoryRoot, "src", "CriuHooks.Hook", "CriuHooks.Hook.csproj");
            (int code, string output, string error) = Run.Capture("dotnet", ["publish", project, "-c", "Release", "-r", "linux-x64", "-o", _publishDirectory, "-nologo"],
                null, TimeSpan.FromMinutes(8));
            Hook = Path.Combine(_publishDirectory, "tcpfreeze-criu-hook");
            if (code != 0 || !File.Exists(Hook))
                throw new InvalidOperationException($"publishing the hook failed ({code}): {error} {output}");
        }
    }

    /// <summary>The CRIU binary.</summary>
    public string Criu { get; }

    /// <summary>The published hook executable.</summary>
    public string Hook { get; }

    public static string RepositoryRoot => Repository.Root;

    /// <summary>$TCPFREEZE_CRIU, the setup script's build, or `criu` on PATH.</summary>
    public static string FindCriu()
    {
        foreach (string? candidate in new[] { Environment.GetEnvironmentVariable("TCPFREEZE_CRIU"), "/var/cache/tcpfreeze/criu-4.2.1/criu/criu" })
            if (!string.IsNullOrEmpty(candidate) && File.Exists(candidate))
                return candidate;
        return "criu";
    }

    public void Dispose()
    {
        if (_publishDirectory is not null)
            Directory.Delete(_publishDirectory, recursive: true);
    }
}
