using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.Containers;

/// <summary>What an engine command did: exit code, output (stdout then stderr) and wall time.</summary>
public sealed record EngineResult(string Command, int ExitCode, string Output, TimeSpan Elapsed)
{
    public EngineResult Succeeds()
    {
        Assert.True(ExitCode == 0, $"{Command} exited {ExitCode} after {Elapsed.TotalMilliseconds:F0} ms:\n{Output}{CriuLogTail()}");
        return this;
    }

    /// <summary>
    /// The end of the CRIU log an engine's error names ("... path= /.../criu-dump.log"), which runc's own
    /// message does not include and which the test's folder takes away with it.
    /// </summary>
    public string CriuLogTail(int lines = 40)
    {
        Match named = Regex.Match(Output, @"path=\s*(\S+\.log)");
        if (!named.Success || !File.Exists(named.Groups[1].Value))
            return "";
        string[] log = File.ReadAllLines(named.Groups[1].Value);
        return $"\n--- the last {Math.Min(lines, log.Length)} lines of {named.Groups[1].Value}:\n" + string.Join('\n', log.TakeLast(lines));
    }
}

/// <summary>
/// The "host" a container engine runs on in a test: a network namespace of the test's own
/// (so a host-network container shares that one, never the machine's) and a private mount
/// namespace in which
/// <list type="bullet">
/// <item>/etc/criu and /etc/tcpfreeze are the test's folders <see cref="CriuConfigDirectory"/>
/// and <see cref="HookConfigDirectory"/>: runc, podman and CRIU read the test's CRIU
/// configuration, the hook its settings file, and the machine's own files are never touched;</item>
/// <item>/etc and /var/lib are copy-on-write overlays on the test's folder (also what makes the
/// two mount points exist on a machine without them): whatever an engine writes there (podman's
/// blob-info cache in /var/lib/containers, a CNI file) lands in the test folder.</item>
/// <item>with a private /run (<see cref="Start"/>'s privateRun), /run is a copy-on-write overlay too, with the
/// machine's /run/netns bound back into it: for engines that write fixed paths there (containerd's shim sockets
/// in /run/containerd/s, dockerd's /run/docker/plugins).</item>
/// </list>
/// A holder shell keeps the namespace alive; every engine command runs in it through
/// nsenter, with a clean environment (PATH and what the command is given, like the
/// stripped environment engines hand CRIU's action scripts). Everything mounted lives in
/// that namespace and goes with it.
/// </summary>
public sealed class EngineHost : IDisposable
{
    private const string Setup = """
        set -e
        w=$1
        mount -t overlay tcpfreeze-etc -o "lowerdir=/etc,upperdir=$w/etc/upper,workdir=$w/etc/work" /etc
        mount -t overlay tcpfreeze-varlib -o "lowerdir=/var/lib,upperdir=$w/varlib/upper,workdir=$w/varlib/work" /var/lib
        mkdir -p /etc/criu /etc/tcpfreeze
        mount --bind "$w/criu" /etc/criu
        mount --bind "$w/tcpfreeze" /etc/tcpfreeze
        if [ "$2" = private-run ]; then
          mount --rbind /run/netns "$w/run/netns"
          mount -t overlay tcpfreeze-run -o "lowerdir=/run,upperdir=$w/run/upper,workdir=$w/run/work" /run
          mount --rbind "$w/run/netns" /run/netns
        fi
        echo ready
        read -r _ || true
        """;

    private readonly Process _holder;
    private readonly string? _ownNamespace;
    private readonly string _path;

    private EngineHost(Process holder, string directory, string namespaceName, string? ownNamespace, string path)
    {
        _holder = holder;
        Directory = directory;
        NamespaceName = namespaceName;
        _ownNamespace = ownNamespace;
        _path = path;
    }

    /// <summary>The folder holding the overlays and the two configuration folders.</summary>
    public string Directory { get; }

    /// <summary>What the engine sees as /etc/criu.</summary>
    public string CriuConfigDirectory => Path.Combine(Directory, "criu");

    /// <summary>What the engine (and the hook it runs) sees as /etc/tcpfreeze.</summary>
    public string HookConfigDirectory => Path.Combine(Directory, "tcpfreeze");

    /// <summary>The network namespace the engine runs in.</summary>
    public string NamespaceName { get; }

    /// <summary>The holder process: /proc/PID/ns/{mnt,net} are the engine's namespaces.</summary>
    public int HolderPid => _holder.Id;

    /// <summary>
    /// Starts the holder in network namespace <paramref name="namespaceName"/>, or in a new
    /// namespace of its own (loopback only) when that is null. <paramref name="criuDirectory"/>
    /// holds the `criu` engines must run (CRIU 4.2.1): it goes first on PATH.
    /// </summary>
    public static EngineHost Start(string workDirectory, string? namespaceName, string criuDirectory, bool privateRun = false)
    {
        string directory = Path.Combine(workDirectory, "engine-host");
        foreach (string sub in new[] { "etc/upper", "etc/work", "varlib/upper", "varlib/work", "run/upper", "run/work", "run/netns", "criu", "tcpfreeze" })
            System.IO.Directory.CreateDirectory(Path.Combine(directory, sub));
        string? own = null;
        if (namespaceName is null)
        {
            own = namespaceName = $"tfz{Environment.ProcessId}e{Interlocked.Increment(ref s_counter)}";
            Run.Checked("ip", "netns", "add", own);
            Run.Checked("ip", "-n", own, "link", "set", "lo", "up");
        }
        var info = new ProcessStartInfo("nsenter")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in new[] { $"--net=/run/netns/{namespaceName}", "unshare", "--mount", "--propagation", "private", "sh", "-c", Setup, "sh", directory, privateRun ? "private-run" : "" })
            info.ArgumentList.Add(argument);
        Process holder;
        try
        {
            holder = Process.Start(info) ?? throw new InvalidOperationException("could not start the engine host's holder");
        }
        catch
        {
            if (own is not null)
                Run.Capture("ip", "netns", "del", own);
            throw;
        }
        string path = $"{criuDirectory}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        var host = new EngineHost(holder, directory, namespaceName, own, path);
        Task<string?> ready = holder.StandardOutput.ReadLineAsync();
        if (!ready.Wait(TimeSpan.FromSeconds(20)) || ready.Result != "ready")
        {
            string error = holder.HasExited ? holder.StandardError.ReadToEnd() : "(still running)";
            host.Dispose();
            throw new InvalidOperationException($"the engine host's mount namespace was not set up: {error}");
        }
        return host;
    }

    private static int s_counter;

    /// <summary>Writes <paramref name="content"/> to <paramref name="path"/> as the engine sees it (under /etc: into the test's overlay).</summary>
    public void WriteFile(string path, string content)
        => Execute("sh", ["-c", "mkdir -p \"$(dirname \"$2\")\" && printf '%s' \"$1\" > \"$2\"", "sh", content, path]).Succeeds();

    /// <summary>Runs <paramref name="program"/> on this host (its mount and network namespaces) with a clean environment.</summary>
    public EngineResult Execute(string program, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null, TimeSpan? timeout = null)
    {
        string[] argv = arguments.ToArray();
        ProcessStartInfo info = Inside([program, .. argv], environment, redirectOutput: true);
        string command = $"{program} {string.Join(' ', argv)}";
        var clock = Stopwatch.StartNew();
        using Process process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {command}");
        process.StandardInput.Close();
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> error = process.StandardError.ReadToEndAsync();
        TimeSpan limit = timeout ?? TimeSpan.FromMinutes(2);
        if (!process.WaitForExit(limit))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{command} did not finish within {limit}");
        }
        process.WaitForExit();
        TimeSpan elapsed = clock.Elapsed;
        // A detached child (conmon, a container started with -d) may keep the pipes open: do not wait for it.
        string text = (output.Wait(TimeSpan.FromSeconds(5)) ? output.Result : "") + (error.Wait(TimeSpan.FromSeconds(5)) ? error.Result : "");
        return new EngineResult(command, process.ExitCode, text, elapsed);
    }

    /// <summary>
    /// Starts a long-running <paramref name="program"/> (an engine daemon) on this host, its output appended to
    /// <paramref name="logFile"/>. nsenter and the shell exec in place, so the returned process is the daemon.
    /// </summary>
    public EngineDaemon StartDaemon(string program, IEnumerable<string> arguments, string logFile, IReadOnlyDictionary<string, string>? environment = null)
    {
        ProcessStartInfo info = Inside(
            ["sh", "-c", "log=$1; shift; exec \"$@\" >> \"$log\" 2>&1 </dev/null", "sh", logFile, program, .. arguments],
            environment, redirectOutput: false);
        Process process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {program}");
        process.StandardInput.Close();
        return new EngineDaemon(program, process, logFile);
    }

    /// <summary>
    /// nsenter into this host's mount and network namespaces running <paramref name="command"/>, with a clean
    /// environment: PATH and <paramref name="environment"/> only.
    /// </summary>
    private ProcessStartInfo Inside(IEnumerable<string> command, IReadOnlyDictionary<string, string>? environment, bool redirectOutput)
    {
        var info = new ProcessStartInfo("nsenter")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = redirectOutput,
            RedirectStandardError = redirectOutput,
            UseShellExecute = false,
            WorkingDirectory = "/",
        };
        info.Environment.Clear();
        info.Environment["PATH"] = _path;
        if (environment is not null)
            foreach ((string name, string value) in environment)
                info.Environment[name] = value;
        foreach (string argument in new[] { "-t", HolderPid.ToString(), "--mount", "--net", "--" }.Concat(command))
            info.ArgumentList.Add(argument);
        return info;
    }

    /// <summary>The processes other than the holder that are in this host's mount namespace (an engine, a shim, a container), as "PID name".</summary>
    public IReadOnlyList<string> ProcessesInside()
    {
        string ours = MountNamespace(HolderPid) ?? "";
        var found = new List<string>();
        foreach (string dir in System.IO.Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid) || pid == HolderPid)
                continue;
            if (ours.Length > 0 && MountNamespace(pid) == ours)
            {
                string name = File.Exists(Path.Combine(dir, "comm")) ? ReadOrEmpty(Path.Combine(dir, "comm")).Trim() : "?";
                found.Add($"{pid} {name}");
            }
        }
        return found;
    }

    private static string? MountNamespace(int pid)
    {
        try
        {
            return new FileInfo($"/proc/{pid}/ns/mnt").LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static string ReadOrEmpty(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (IOException)
        {
            return "";
        }
    }

    public void Dispose()
    {
        try
        {
            if (!_holder.HasExited)
            {
                _holder.StandardInput.Close();
                if (!_holder.WaitForExit(5000))
                    _holder.Kill();
                _holder.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
        }
        _holder.Dispose();
        if (_ownNamespace is not null)
            Run.Capture("ip", "netns", "del", _ownNamespace);
    }
}

/// <summary>An engine daemon (dockerd, containerd) started by <see cref="EngineHost.StartDaemon"/>; <see cref="Stop"/> ends it by its PID.</summary>
public sealed class EngineDaemon(string name, Process process, string logFile) : IDisposable
{
    public int Pid => process.Id;

    public bool HasExited => process.HasExited;

    public string LogFile => logFile;

    /// <summary>The last lines of its log.</summary>
    public string LogTail(int lines = 30)
    {
        try
        {
            return string.Join('\n', File.ReadLines(logFile).TakeLast(lines));
        }
        catch (IOException e)
        {
            return $"({logFile}: {e.Message})";
        }
    }

    /// <summary>SIGTERM, then SIGKILL after <paramref name="grace"/>; returns a complaint when it had to be killed (empty when it ended by itself).</summary>
    public string Stop(TimeSpan grace)
    {
        if (process.HasExited)
            return "";
        Run.Capture("kill", ["-TERM", Pid.ToString()]);
        if (process.WaitForExit(grace))
            return "";
        process.Kill();
        process.WaitForExit(5000);
        return $"{name} (PID {Pid}) did not end within {grace} of SIGTERM and was killed";
    }

    public void Dispose()
    {
        Stop(TimeSpan.FromSeconds(30));
        process.Dispose();
    }
}

/// <summary>
/// A cgroup of the test's own under which the engines create their containers' cgroups
/// (podman --cgroup-parent, runc's cgroupsPath), removed with everything below it.
/// </summary>
public sealed class TestCgroup
{
    private static int s_counter;

    public TestCgroup() => Name = $"/tcpfreeze-test-{Environment.ProcessId}-{Interlocked.Increment(ref s_counter)}";

    /// <summary>The cgroup path, e.g. /tcpfreeze-test-123-1.</summary>
    public string Name { get; }

    /// <summary>Its folders in every mounted hierarchy (cgroup v1 controllers, the unified one, or v2 alone).</summary>
    public IEnumerable<string> Folders()
    {
        var roots = new List<string> { "/sys/fs/cgroup" };
        if (System.IO.Directory.Exists("/sys/fs/cgroup"))
            roots.AddRange(System.IO.Directory.EnumerateDirectories("/sys/fs/cgroup"));
        return roots.Select(root => root + Name).Where(System.IO.Directory.Exists);
    }

    /// <summary>Removes the folders, deepest first; returns those that could not be removed (a process still in them).</summary>
    public List<string> Remove()
    {
        var left = new List<string>();
        foreach (string folder in Folders().ToList())
        {
            IEnumerable<string> all = System.IO.Directory.EnumerateDirectories(folder, "*", SearchOption.AllDirectories)
                .OrderByDescending(d => d.Length).Append(folder).ToList();
            foreach (string directory in all)
            {
                try
                {
                    System.IO.Directory.Delete(directory); // cgroupfs: rmdir of a cgroup with only its control files
                }
                catch (IOException e)
                {
                    left.Add($"{directory} ({e.Message})");
                }
            }
        }
        return left;
    }
}

/// <summary>A snapshot of what the engines could touch outside the test folders, to prove they did not.</summary>
public sealed record HostState(string EtcCriu, bool RunRunc, bool VarLibContainers, bool RunLibpod, bool RunContainers, bool LibpodShmLock,
    bool RunDocker, bool VarLibDocker, bool DockerSocket, bool RunContainerd, bool VarLibContainerd)
{
    public static HostState Read() => new(
        DescribeFolder("/etc/criu"),
        Directory.Exists("/run/runc"),
        Directory.Exists("/var/lib/containers"),
        Directory.Exists("/run/libpod"),
        Directory.Exists("/run/containers"),
        File.Exists("/dev/shm/libpod_lock"),
        Directory.Exists("/run/docker"),
        Directory.Exists("/var/lib/docker"),
        File.Exists("/run/docker.sock"),
        Directory.Exists("/run/containerd"),
        Directory.Exists("/var/lib/containerd"));

    /// <summary>Every file's name and content, or "missing".</summary>
    private static string DescribeFolder(string path)
    {
        if (!Directory.Exists(path))
            return "missing";
        var text = new StringBuilder();
        foreach (string file in Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories).Order())
            text.Append(file).Append('\n').Append(File.ReadAllText(file)).Append('\n');
        return text.ToString();
    }
}
