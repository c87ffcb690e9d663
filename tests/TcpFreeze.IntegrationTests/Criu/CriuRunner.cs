using System.Diagnostics;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.Criu;

/// <summary>Runs CRIU dump and restore of a host-namespace process tree inside a test namespace.</summary>
public sealed class CriuRunner(string criu, string hook, string namespaceName, string workDirectory, string pinRoot)
{
    public Dictionary<string, string> Environment { get; } = new()
    {
        ["TCPFREEZE_PIN_ROOT"] = pinRoot,
        ["TCPFREEZE_LEASE_SECONDS"] = "60",
        ["TCPFREEZE_HOOK_CONFIG"] = "",
    };

    /// <summary>Action scripts CRIU runs after the hook, at every step.</summary>
    public List<string> ExtraScripts { get; } = [];

    public List<string> ExtraDumpArguments { get; } = [];

    /// <summary>A command line CRIU runs under (e.g. unshare into a private mount namespace); empty: none.</summary>
    public List<string> Wrapper { get; } = [];

    public string Images => Path.Combine(workDirectory, "images");

    /// <summary>CRIU's --network-lock when the hook is off (iptables, nftables or skip); with the hook it is always skip.</summary>
    public string NetworkLockWithoutHook { get; set; } = "iptables";

    /// <summary>How long one CRIU run may take before it is killed.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(3);

    public (int ExitCode, TimeSpan Elapsed, string Log) Dump(int pid, bool useHook = true, string? netns = null)
    {
        Directory.CreateDirectory(Images);
        return Criu(netns ?? namespaceName, useHook, ["dump", "-t", pid.ToString(), "-o", "dump.log", .. ExtraDumpArguments]);
    }

    public (int ExitCode, TimeSpan Elapsed, string Log) Restore(bool useHook = true, string? netns = null)
        => Criu(netns ?? namespaceName, useHook, "restore", "-d", "-o", "restore.log");

    private (int, TimeSpan, string) Criu(string ns, bool useHook, params string[] arguments)
    {
        var argv = new List<string> { $"--net=/run/netns/{ns}", criu };
        argv.AddRange(arguments);
        argv.AddRange(["-D", Images, "-v4", "--tcp-established", "--network-lock", useHook ? "skip" : NetworkLockWithoutHook]);
        // CRIU runs action scripts in the reverse order of their options: the extra scripts
        // come first on the command line so that they run after the hook at every step.
        foreach (string script in ExtraScripts)
            argv.AddRange(["--action-script", script]);
        if (useHook)
            argv.AddRange(["--action-script", hook]);
        var clock = Stopwatch.StartNew();
        string program = "nsenter";
        if (Wrapper.Count > 0)
        {
            argv.Insert(0, program);
            argv.InsertRange(0, Wrapper.Skip(1));
            program = Wrapper[0];
        }
        (int code, string output, string error) = Run.Capture(program, argv, Environment, Timeout);
        TimeSpan elapsed = clock.Elapsed;
        string logFile = Path.Combine(Images, arguments[0] == "dump" ? "dump.log" : "restore.log");
        string log = File.Exists(logFile) ? File.ReadAllText(logFile) : "";
        return (code, elapsed, $"{output}{error}{log}");
    }

    public static string Tail(string log, int lines = 40) => string.Join('\n', log.Split('\n').TakeLast(lines));
}
