using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace TcpFreeze.Tests.Containers;

/// <summary>
/// Debian's containerd 1.6 (containerd, ctr, the runc v2 shim, runc) on an <see cref="EngineHost"/> with a
/// private /run (the shims' sockets are in /run/containerd/s whatever the configuration says), with nothing of
/// the machine's own: its configuration file, root, state, API socket and ttrpc socket are in the test's folder,
/// the CRI plugin is off (no Kubernetes here), containers use the native snapshotter (plain folders, no mounts)
/// and runc keeps its state in the test's folder too (ctr --runc-root). ctr works in a namespace of the test's own.
/// </summary>
public sealed class Containerd
{
    public const string Image = "localhost/tcpfreeze-busybox:test";
    public const string Namespace = "tcpfreeze-test";
    public const string Daemon = "/usr/bin/containerd";
    public const string Client = "/usr/bin/ctr";

    private readonly EngineHost _host;
    private readonly string _folder;
    private EngineDaemon? _daemon;

    public Containerd(EngineHost host, string workDirectory, TestCgroup cgroup)
    {
        _host = host;
        Cgroup = cgroup;
        _folder = Path.Combine(workDirectory, "containerd");
        foreach (string sub in new[] { "root", "state", "runc", "fifo" })
            Directory.CreateDirectory(Path.Combine(_folder, sub));
    }

    public TestCgroup Cgroup { get; }

    public string Socket => Path.Combine(_folder, "containerd.sock");

    private string RuncRoot => Path.Combine(_folder, "runc");

    /// <summary>Writes the configuration, starts containerd and waits until ctr gets an answer (at most a minute).</summary>
    public void Start()
    {
        string config = Path.Combine(_folder, "config.toml");
        File.WriteAllText(config, $"""
            version = 2
            root = "{Path.Combine(_folder, "root")}"
            state = "{Path.Combine(_folder, "state")}"
            disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                                "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

            [grpc]
              address = "{Socket}"

            [ttrpc]
              address = "{Socket}.ttrpc"

            [debug]
              address = ""

            [metrics]
              address = ""

            """);
        _daemon = _host.StartDaemon(Daemon, ["--config", config], Path.Combine(_folder, "containerd.log"));
        var clock = Stopwatch.StartNew();
        while (true)
        {
            EngineResult version = Run("version");
            if (version.ExitCode == 0 && version.Output.Contains("Server:"))
                return;
            if (_daemon.HasExited || clock.Elapsed > TimeSpan.FromMinutes(1))
                throw new InvalidOperationException($"containerd did not come up ({(_daemon.HasExited ? "it exited" : "no answer in a minute")}): {version.Output}\n{_daemon.LogTail()}");
            Thread.Sleep(200);
        }
    }

    /// <summary>Runs `ctr ARGS` on the engine host against this test's containerd, in <see cref="Namespace"/>.</summary>
    public EngineResult Run(params string[] arguments) => _host.Execute(Client, ["--address", Socket, "--namespace", Namespace, .. arguments]);

    /// <summary>
    /// Imports <paramref name="rootfs"/> as <see cref="Image"/>. ctr imports image archives only (no registry is
    /// reachable here), so this writes one in Docker's `docker save` layout: the rootfs as the one layer, a config
    /// naming its digest, and manifest.json with the tag.
    /// </summary>
    public void Import(string rootfs, string workDirectory)
    {
        string folder = Directory.CreateDirectory(Path.Combine(workDirectory, "containerd-image")).FullName;
        string layer = Path.Combine(folder, "layer.tar");
        Infrastructure.Run.Checked("tar", "-C", rootfs, "-cf", layer, ".");
        string configText = new JsonObject
        {
            ["architecture"] = "amd64",
            ["os"] = "linux",
            ["config"] = new JsonObject(),
            ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray("sha256:" + Sha256(layer)) },
        }.ToJsonString();
        string configName = Sha256Of(configText) + ".json";
        File.WriteAllText(Path.Combine(folder, configName), configText);
        File.WriteAllText(Path.Combine(folder, "manifest.json"), new JsonArray(new JsonObject
        {
            ["Config"] = configName,
            ["RepoTags"] = new JsonArray(Image),
            ["Layers"] = new JsonArray("layer.tar"),
        }).ToJsonString());
        string archive = Path.Combine(workDirectory, "containerd-image.tar");
        Infrastructure.Run.Checked("tar", "-C", folder, "-cf", archive, ".");
        Run("images", "import", "--snapshotter", "native", archive).Succeeds();
        File.Delete(archive);
        Directory.Delete(folder, recursive: true);
    }

    /// <summary>
    /// Starts container <paramref name="name"/> on the host network (--net-host) running the echo server on
    /// <paramref name="address"/>:<paramref name="port"/>, with the host's /usr read-only for python3 and the server
    /// folder as /srv. ctr hands the task FIFOs of the host for its stdio, which CRIU cannot dump, so the server's
    /// stdio are the container's own /dev/null.
    /// </summary>
    public EngineResult StartEchoServer(string name, string serverFolder, string address, int port)
        => Run("run", "--detach", "--snapshotter", "native", "--net-host", "--runc-root", RuncRoot,
            "--cgroup", $"{Cgroup.Name}/{name}", "--fifo-dir", Path.Combine(_folder, "fifo"),
            "--mount", "type=bind,src=/usr,dst=/usr,options=rbind:ro",
            "--mount", $"type=bind,src={serverFolder},dst=/srv,options=rbind:ro",
            Image, name, "/bin/sh", "-c",
            $"exec /usr/bin/python3 /srv/{ContainerFiles.EchoServerFileName} {address} {port} </dev/null >/dev/null 2>&1").Succeeds();

    /// <summary>The task's status as `ctr tasks ls` shows it (RUNNING, STOPPED, ...), or null when there is no task.</summary>
    public string? TaskStatus(string name)
    {
        foreach (string line in Run("tasks", "ls").Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1))
        {
            string[] fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length >= 3 && fields[0] == name)
                return fields[2];
        }
        return null;
    }

    /// <summary>
    /// The names of the files in the CRIU images of checkpoint image <paramref name="reference"/>: the index's
    /// criu.tar blob, read from the content store.
    /// </summary>
    public IReadOnlyList<string> CheckpointFiles(string reference)
    {
        string? digest = Run("images", "ls").Output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .FirstOrDefault(fields => fields.Length >= 3 && fields[0] == reference)?[2];
        if (digest is null)
            throw new InvalidOperationException($"ctr lists no image {reference}");
        JsonNode index = JsonNode.Parse(File.ReadAllText(Blob(digest)))!;
        JsonNode criu = index["manifests"]!.AsArray().First(m => (string?)m!["mediaType"] == CriuImagesMediaType)!;
        return Infrastructure.Run.Checked("tar", "-tf", Blob((string)criu["digest"]!)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>The media type of the CRIU images in a containerd checkpoint image.</summary>
    public const string CriuImagesMediaType = "application/vnd.containerd.container.criu.checkpoint.criu.tar";

    private string Blob(string digest)
        => Path.Combine(_folder, "root", "io.containerd.content.v1.content", "blobs", "sha256", digest["sha256:".Length..]);

    /// <summary>
    /// Kills and removes every task and container, removes every image, stops containerd (SIGTERM by its PID), and
    /// returns what was left: what ctr still listed, a daemon that had to be killed, processes still in the engine
    /// host's mount namespace (a shim, a container).
    /// </summary>
    public string RemoveEverything()
    {
        if (_daemon is null)
            return "";
        var left = new List<string>();
        try
        {
            if (!_daemon.HasExited)
                RemoveContainersAndImages(left);
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

    private void RemoveContainersAndImages(List<string> left)
    {
        TimeSpan bound = TimeSpan.FromSeconds(30);
        foreach (string id in Run("containers", "ls", "--quiet").Output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            Run(bound, "tasks", "kill", "--signal", "SIGKILL", id);
            WaitUntilStopped(id);
            Run(bound, "tasks", "rm", "--force", id);
            Run(bound, "containers", "rm", id);
        }
        foreach (string image in Run("images", "ls", "--quiet").Output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            Run(bound, "images", "rm", "--sync", image);
        string containers = Run("containers", "ls", "--quiet").Output.Trim();
        string images = Run("images", "ls", "--quiet").Output.Trim();
        if (containers.Length > 0)
            left.Add($"containers: {containers}");
        if (images.Length > 0)
            left.Add($"images: {images}");
    }

    private EngineResult Run(TimeSpan timeout, params string[] arguments)
        => _host.Execute(Client, ["--address", Socket, "--namespace", Namespace, .. arguments], timeout: timeout);

    private void WaitUntilStopped(string id)
    {
        var clock = Stopwatch.StartNew();
        while (TaskStatus(id) is "RUNNING" or "PAUSED" or "PAUSING" && clock.Elapsed < TimeSpan.FromSeconds(10))
            Thread.Sleep(100);
    }

    private static string Sha256(string path)
    {
        using FileStream stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    private static string Sha256Of(string text) => Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text)));
}
