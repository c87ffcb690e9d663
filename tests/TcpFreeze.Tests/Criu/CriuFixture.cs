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

    public static string RepositoryRoot
    {
        get
        {
            for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "TcpFreeze.slnx")))
                    return d.FullName;
            throw new InvalidOperationException("cannot find the repository root (TcpFreeze.slnx) above " + AppContext.BaseDirectory);
        }
    }

    private static string FindCriu()
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

[CollectionDefinition("criu", DisableParallelization = true)]
public sealed class CriuCollection : ICollectionFixture<CriuFixture>;

/// <summary>Runs CRIU dump and restore of a host-namespace process tree inside a test namespace.</summary>
public sealed class CriuRunner(CriuFixture fixture, string namespaceName, string workDirectory, string pinRoot)
{
    public Dictionary<string, string> Environment { get; } = new()
    {
        ["TCPFREEZE_PIN_ROOT"] = pinRoot,
        ["TCPFREEZE_LEASE_SECONDS"] = "60",
        ["TCPFREEZE_HOOK_CONFIG"] = "",
    };

    public List<string> ExtraScripts { get; } = [];

    public List<string> ExtraDumpArguments { get; } = [];

    public string Images => Path.Combine(workDirectory, "images");

    public (int ExitCode, TimeSpan Elapsed, string Log) Dump(int pid, bool useHook = true, string? netns = null)
    {
        Directory.CreateDirectory(Images);
        return Criu(netns ?? namespaceName, useHook, ["dump", "-t", pid.ToString(), "-o", "dump.log", .. ExtraDumpArguments]);
    }

    public (int ExitCode, TimeSpan Elapsed, string Log) Restore(bool useHook = true, string? netns = null)
        => Criu(netns ?? namespaceName, useHook, "restore", "-d", "-o", "restore.log");

    private (int, TimeSpan, string) Criu(string ns, bool useHook, params string[] arguments)
    {
        var argv = new List<string> { $"--net=/run/netns/{ns}", fixture.Criu };
        argv.AddRange(arguments);
        argv.AddRange(["-D", Images, "-v4", "--tcp-established", "--network-lock", useHook ? "skip" : "iptables"]);
        if (useHook)
            argv.AddRange(["--action-script", fixture.Hook]);
        foreach (string script in ExtraScripts)
            argv.AddRange(["--action-script", script]);
        var clock = Stopwatch.StartNew();
        (int code, string output, string error) = Run.Capture("nsenter", argv, Environment, TimeSpan.FromMinutes(3));
        TimeSpan elapsed = clock.Elapsed;
        string logFile = Path.Combine(Images, arguments[0] == "dump" ? "dump.log" : "restore.log");
        string log = File.Exists(logFile) ? File.ReadAllText(logFile) : "";
        return (code, elapsed, $"{output}{error}{log}");
    }

    public static string Tail(string log, int lines = 40) => string.Join('\n', log.Split('\n').TakeLast(lines));
}
