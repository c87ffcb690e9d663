using System.Diagnostics;
using System.Net;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.Criu;

/// <summary>
/// A post-copy (lazy pages) CRIU migration from hostA to hostB of <see cref="BridgedHosts"/>, step by
/// step: <c>criu dump --lazy-pages</c> on hostA (it writes everything but the memory, runs post-dump,
/// then serves the memory from a page server and keeps the tasks frozen until the transfer ends);
/// the images copied to hostB's folder; <c>criu lazy-pages --page-server</c> on hostB (connects to the
/// source's page server); <c>criu restore --lazy-pages</c> on hostB, which starts the tasks before their
/// memory arrives: the daemon fetches each page on its first touch and the rest in the background.
/// Every CRIU run gets the same hook environment as <see cref="CriuRunner"/>. Dispose kills, by PID,
/// the CRIU processes still running.
/// </summary>
public sealed class LazyPagesMigration(string criu, string? hook, BridgedHosts hosts, string workDirectory, string pinRoot) : IDisposable
{
    private BackgroundCriu? _dump, _daemon;

    public Dictionary<string, string> Environment { get; } = new()
    {
        ["TCPFREEZE_PIN_ROOT"] = pinRoot,
        ["TCPFREEZE_LEASE_SECONDS"] = "60",
        ["TCPFREEZE_HOOK_CONFIG"] = "",
    };

    /// <summary>The source's page server: hostA's own address and a port no test server uses.</summary>
    public IPEndPoint PageServer { get; } = new(IPAddress.Parse($"198.18.{hosts.Subnet}.11"), 27000);

    public string SourceImages => Path.Combine(workDirectory, "images-a");
    public string DestinationImages => Path.Combine(workDirectory, "images-b");

    /// <summary>How long one CRIU run may take before it is killed.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(3);

    /// <summary>The source's dump (null before <see cref="StartDump"/>).</summary>
    public int? DumpPid => _dump?.Process.Id;

    /// <summary>When the source's dump exited (its page server handed over the last page, or failed); null while it runs.</summary>
    public DateTime? DumpExitTime => _dump is { } d && d.Process.HasExited ? d.Process.ExitTime.ToUniversalTime() : null;

    /// <summary>The destination's lazy-pages daemon (null before <see cref="StartLazyPagesDaemon"/>).</summary>
    public int? DaemonPid => _daemon?.Process.Id;

    /// <summary>
    /// Starts <c>criu dump --lazy-pages</c> of <paramref name="pid"/> on hostA and waits (bounded) until its
    /// page server listens (CRIU's status-ready action). False if the dump ended first (see <see cref="WaitForDump"/>).
    /// </summary>
    public bool StartDump(int pid, TimeSpan bound)
    {
        Directory.CreateDirectory(SourceImages);
        string ready = Path.Combine(workDirectory, "page-server-ready");
        _dump = BackgroundCriu.Start(criu, hosts.HostA, Environment,
            ["dump", "-t", pid.ToString(), "-D", SourceImages, "-o", "dump.log", "-v4", "--tcp-established",
             "--lazy-pages", "--address", PageServer.Address.ToString(), "--port", PageServer.Port.ToString(),
             .. Scripts(WriteReadyScript("page-server", ready))]);
        return WaitFor(() => File.Exists(ready), _dump, bound);
    }

    /// <summary>The image copy: everything the dump wrote (no memory but what it could not leave lazy), without its log.</summary>
    public void CopyImages()
    {
        Directory.CreateDirectory(DestinationImages);
        foreach (string file in Directory.GetFiles(SourceImages))
            if (Path.GetFileName(file) != "dump.log")
                File.Copy(file, Path.Combine(DestinationImages, Path.GetFileName(file)), overwrite: true);
    }

    /// <summary>Starts <c>criu lazy-pages</c> on hostB and waits (bounded) until it listens for the restore.</summary>
    public bool StartLazyPagesDaemon(TimeSpan bound)
    {
        string ready = Path.Combine(workDirectory, "lazy-pages-ready");
        _daemon = BackgroundCriu.Start(criu, hosts.HostB, Environment,
            ["lazy-pages", "--page-server", "--address", PageServer.Address.ToString(), "--port", PageServer.Port.ToString(),
             "-D", DestinationImages, "-o", "lazy-pages.log", "-v4", "--action-script", WriteReadyScript("lazy-pages", ready)]);
        return WaitFor(() => File.Exists(ready), _daemon, bound);
    }

    /// <summary>
    /// <c>criu restore --lazy-pages -d</c> on hostB with the hook; <paramref name="extraScripts"/> run after
    /// it at every step (e.g. the address move). Returns when the tasks run again, their memory still coming.
    /// </summary>
    public (int ExitCode, TimeSpan Elapsed, string Log, int? RestoredPid) Restore(params string[] extraScripts)
    {
        string pidFile = Path.Combine(workDirectory, "restored.pid");
        var argv = new List<string>
        {
            "restore", "-D", DestinationImages, "-o", "restore.log", "-v4", "--tcp-established", "-d", "--lazy-pages", "--pidfile", pidFile,
        };
        argv.AddRange(Scripts(extraScripts));
        var clock = Stopwatch.StartNew();
        (int code, string output, string error) = Run.Capture("nsenter", [$"--net=/run/netns/{hosts.HostB}", criu, .. argv], Environment, Timeout);
        TimeSpan elapsed = clock.Elapsed;
        string log = ReadLog(DestinationImages, "restore.log");
        int? restored = File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), out int p) ? p : null;
        return (code, elapsed, $"{output}{error}{log}", restored);
    }

    /// <summary>Waits (bounded) for the source's dump to end: its exit code (null if it did not end) and its log.</summary>
    public (int? ExitCode, string Log) WaitForDump(TimeSpan bound) => Wait(_dump, bound, SourceImages, "dump.log");

    /// <summary>Waits (bounded) for the destination's lazy-pages daemon to end.</summary>
    public (int? ExitCode, string Log) WaitForDaemon(TimeSpan bound) => Wait(_daemon, bound, DestinationImages, "lazy-pages.log");

    /// <summary>
    /// The hook (if any) last on the command line, so that it runs first at every step (CRIU 4.2.1 runs
    /// action scripts in the reverse order of their options), with the network lock left to it.
    /// </summary>
    private IEnumerable<string> Scripts(IEnumerable<string> extra)
    {
        yield return "--network-lock";
        yield return hook is null ? "iptables" : "skip";
        foreach (string script in extra)
        {
            yield return "--action-script";
            yield return script;
        }
        if (hook is not null)
        {
            yield return "--action-script";
            yield return hook;
        }
    }

    private IEnumerable<string> Scripts(string extra) => Scripts([extra]);

    /// <summary>An action script that creates <paramref name="marker"/> at status-ready (the page server or the daemon listens).</summary>
    private string WriteReadyScript(string name, string marker)
    {
        string path = Path.Combine(workDirectory, $"{name}-ready.sh");
        File.WriteAllText(path, $"""
            #!/bin/sh
            [ "$CRTOOLS_SCRIPT_ACTION" = status-ready ] || exit 0
            : > "{marker}"
            """.Replace("\r", ""));
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    private static bool WaitFor(Func<bool> condition, BackgroundCriu run, TimeSpan bound)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < bound)
        {
            if (condition())
                return true;
            if (run.Process.HasExited)
                return condition();
            Thread.Sleep(5);
        }
        return false;
    }

    private static (int? ExitCode, string Log) Wait(BackgroundCriu? run, TimeSpan bound, string directory, string logName)
    {
        if (run is null)
            return (null, "");
        bool ended = run.Process.WaitForExit(bound);
        string log = run.Output + ReadLog(directory, logName);
        return (ended ? run.Process.ExitCode : null, log);
    }

    private static string ReadLog(string directory, string name)
    {
        string path = Path.Combine(directory, name);
        try
        {
            return File.Exists(path) ? File.ReadAllText(path) : "";
        }
        catch (IOException)
        {
            return "";
        }
    }

    public void Dispose()
    {
        _daemon?.Dispose();
        _dump?.Dispose();
    }

    /// <summary>A CRIU process running in a namespace while the test goes on; its stdout and stderr collected.</summary>
    private sealed class BackgroundCriu : IDisposable
    {
        private readonly System.Text.StringBuilder _output = new();

        private BackgroundCriu(Process process) => Process = process;

        public Process Process { get; }

        public string Output
        {
            get
            {
                lock (_output)
                    return _output.ToString();
            }
        }

        public static BackgroundCriu Start(string criu, string ns, IDictionary<string, string> environment, IEnumerable<string> arguments)
        {
            var info = new ProcessStartInfo("nsenter") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            info.ArgumentList.Add($"--net=/run/netns/{ns}");
            info.ArgumentList.Add(criu);
            foreach (string a in arguments)
                info.ArgumentList.Add(a);
            foreach ((string key, string value) in environment)
                info.Environment[key] = value;
            var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {criu}");
            var run = new BackgroundCriu(process);
            process.OutputDataReceived += (_, e) => run.Append(e.Data);
            process.ErrorDataReceived += (_, e) => run.Append(e.Data);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            return run;
        }

        private void Append(string? line)
        {
            if (line is null)
                return;
            lock (_output)
                _output.AppendLine(line);
        }

        public void Dispose()
        {
            try
            {
                if (!Process.HasExited)
                {
                    Process.Kill();
                    Process.WaitForExit(5000);
                }
            }
            catch (InvalidOperationException)
            {
            }
            Process.Dispose();
        }
    }
}
