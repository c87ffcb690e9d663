using System.Diagnostics;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.Containers;

/// <summary>
/// Debian's Docker (docker.io 20.10: dockerd, its own containerd, runc) on an <see cref="EngineHost"/> with a
/// private /run, with nothing of the machine's own: dockerd's data root, exec root (where it starts its managed
/// containerd, whose shims run runc with its state there too), PID file and API socket are in the test's folder,
/// and so is the client's configuration (DOCKER_CONFIG). Experimental mode, which `docker checkpoint` needs. No
/// network of Docker's: no bridge, no iptables or ip6tables rules, no forwarding sysctl; containers use the host
/// network (the engine host's namespace). The vfs storage driver: plain folders, no mounts. The client is Debian's
/// /usr/bin/docker of the same version (a newer client elsewhere on PATH is not used).
/// </summary>
public sealed class Docker
{
    public const string Image = "localhost/tcpfreeze-busybox:test";
    public const string Client = "/usr/bin/docker";
    public const string Daemon = "/usr/sbin/dockerd";

    private readonly EngineHost _host;
    private readonly string _folder;
    private readonly Dictionary<string, string> _environment;
    private EngineDaemon? _daemon;

    public Docker(EngineHost host, string workDirectory, TestCgroup cgroup)
    {
        _host = host;
        Cgroup = cgroup;
        _folder = Path.Combine(workDirectory, "docker");
        foreach (string sub in new[] { "data", "exec", "config" })
            Directory.CreateDirectory(Path.Combine(_folder, sub));
        _environment = new() { ["DOCKER_CONFIG"] = Path.Combine(_folder, "config"), ["HOME"] = _folder };
    }

    public TestCgroup Cgroup { get; }

    public string Socket => Path.Combine(_folder, "docker.sock");

    /// <summary>Where dockerd keeps container <paramref name="id"/>'s files (its checkpoints among them).</summary>
    public string ContainerDirectory(string id) => Path.Combine(_folder, "data", "containers", id);

    /// <summary>Starts dockerd and waits until it answers (at most a minute).</summary>
    public void Start()
    {
        _daemon = _host.StartDaemon(Daemon, [
            "--experimental",
            "--data-root", Path.Combine(_folder, "data"),
            "--exec-root", Path.Combine(_folder, "exec"),
            "--pidfile", Path.Combine(_folder, "dockerd.pid"),
            "--host", "unix://" + Socket,
            "--bridge", "none", "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
            "--storage-driver", "vfs",
            "--exec-opt", "native.cgroupdriver=cgroupfs",
        ], Path.Combine(_folder, "dockerd.log"), _environment);
        var clock = Stopwatch.StartNew();
        while (true)
        {
            EngineResult version = Run("version", "--format", "{{.Server.Version}}");
            if (version.ExitCode == 0)
                return;
            if (_daemon.HasExited || clock.Elapsed > TimeSpan.FromMinutes(1))
                throw new InvalidOperationException($"dockerd did not come up ({(_daemon.HasExited ? "it exited" : "no answer in a minute")}): {version.Output}\n{_daemon.LogTail()}");
            Thread.Sleep(200);
        }
    }

    /// <summary>Runs `docker ARGS` on the engine host against this test's dockerd.</summary>
    public EngineResult Run(params string[] arguments) => _host.Execute(Client, ["--host", "unix://" + Socket, .. arguments], _environment);

    /// <summary>Imports <paramref name="rootfs"/> as <see cref="Image"/> (no registry is reachable: the image is made from a folder).</summary>
    public void Import(string rootfs, string workDirectory)
    {
        string tarball = Path.Combine(workDirectory, "rootfs.tar");
        Infrastructure.Run.Checked("tar", "-C", rootfs, "-cf", tarball, ".");
        Run("import", tarball, Image).Succeeds();
        File.Delete(tarball);
    }

    /// <summary>
    /// Starts container <paramref name="name"/> on the host network running the echo server on
    /// <paramref name="address"/>:<paramref name="port"/>; the host's /usr comes in read-only for python3, the
    /// server folder as /srv. Its stdio are Docker's own pipes, as for any container.
    /// </summary>
    public EngineResult StartEchoServer(string name, string serverFolder, string address, int port)
        => Run(["run", "--detach", .. EchoServer(name, serverFolder, address, port)]).Succeeds();

    /// <summary>Creates container <paramref name="name"/> as <see cref="StartEchoServer"/> would, without starting it.</summary>
    public EngineResult CreateEchoServer(string name, string serverFolder, string address, int port)
        => Run(["create", .. EchoServer(name, serverFolder, address, port)]).Succeeds();

    private string[] EchoServer(string name, string serverFolder, string address, int port)
        => ["--name", name, "--network", "host", "--cgroup-parent", Cgroup.Name,
            "--ulimit", "nofile=20000:20000",
            "--volume", "/usr:/usr:ro", "--volume", $"{serverFolder}:/srv:ro",
            Image, "/usr/bin/python3", "/srv/" + ContainerFiles.EchoServerFileName, address, port.ToString()];

    /// <summary>The container's state as `docker inspect` reports it (running, exited, ...).</summary>
    public string State(string name) => Run("inspect", "--format", "{{.State.Status}}", name).Output.Trim();

    /// <summary>
    /// Removes every container and image, stops dockerd (SIGTERM by its PID; it stops its containerd), and returns
    /// what was left: containers or images it still listed, a daemon that had to be killed, or processes still in
    /// the engine host's mount namespace (a shim, a container).
    /// </summary>
    public string RemoveEverything()
    {
        if (_daemon is null)
            return "";
        var left = new List<string>();
        try
        {
            if (!_daemon.HasExited)
            {
                foreach (string id in Run("ps", "--all", "--quiet").Output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
                    Run("rm", "--force", id);
                foreach (string id in Run("images", "--quiet").Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Distinct())
                    Run("rmi", "--force", id);
                string containers = Run("ps", "--all", "--quiet").Output.Trim();
                string images = Run("images", "--quiet").Output.Trim();
                if (containers.Length > 0)
                    left.Add($"containers: {containers}");
                if (images.Length > 0)
                    left.Add($"images: {images}");
            }
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException)
        {
            left.Add($"removing containers and images: {e.Message}");
        }
        finally
        {
            EngineProcesses.Stop(_host, _daemon, left);
        }
        return string.Join("; ", left);
    }
}

/// <summary>Ends an engine: its daemon, then whatever of it is still running on the engine host.</summary>
public static class EngineProcesses
{
    /// <summary>
    /// Stops <paramref name="daemon"/> (SIGTERM by its PID, SIGKILL after 30 seconds), waits up to ten seconds for
    /// the processes in <paramref name="host"/>'s mount namespace (shims, containers) to end, and kills by PID
    /// those that did not; adds to <paramref name="left"/> what had to be killed.
    /// </summary>
    public static void Stop(EngineHost host, EngineDaemon daemon, List<string> left)
    {
        string stopped = daemon.Stop(TimeSpan.FromSeconds(30));
        if (stopped.Length > 0)
            left.Add(stopped);
        daemon.Dispose();
        var clock = Stopwatch.StartNew();
        IReadOnlyList<string> processes = host.ProcessesInside();
        while (processes.Count > 0 && clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            Thread.Sleep(100);
            processes = host.ProcessesInside();
        }
        if (processes.Count == 0)
            return;
        left.Add("still running in the engine host (killed): " + string.Join(", ", processes));
        foreach (string process in processes)
            Run.Capture("kill", "-KILL", process.Split(' ')[0]);
    }
}
