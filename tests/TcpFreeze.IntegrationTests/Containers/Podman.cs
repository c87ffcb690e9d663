namespace TcpFreeze.Tests.Containers;

/// <summary>
/// podman (rootful) on an <see cref="EngineHost"/>, with nothing of the machine's own. Its
/// configuration is the engine host's /etc/containers (the test's overlay), so every podman
/// process reads it, including the `podman container cleanup` that conmon starts when a
/// container exits: storage (vfs driver: plain folders, no mounts to outlive a command),
/// run root, libpod's temporary folder and file locks all live in the test's folder; the
/// runtime is runc through a wrapper that keeps runc's state there too (its default is
/// /run/runc); cgroupfs is the cgroup manager (no systemd here); no events are kept.
/// </summary>
public sealed class Podman
{
    public const string Image = "localhost/tcpfreeze-busybox:test";

    private readonly EngineHost _host;

    public Podman(EngineHost host, string workDirectory, TestCgroup cgroup)
    {
        _host = host;
        Cgroup = cgroup;
        string folder = Path.Combine(workDirectory, "podman");
        string storage = Path.Combine(folder, "storage"), run = Path.Combine(folder, "run"), tmp = Path.Combine(folder, "tmp");
        string libpodTmp = Path.Combine(folder, "libpod-tmp"), runcState = Path.Combine(folder, "runc-state");
        foreach (string directory in new[] { storage, run, tmp, libpodTmp, runcState })
            Directory.CreateDirectory(directory);
        string runc = Path.Combine(folder, "runc");
        File.WriteAllText(runc, $"#!/bin/sh\nexec /usr/bin/runc --root {runcState} \"$@\"\n");
        File.SetUnixFileMode(runc, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        host.WriteFile("/etc/containers/storage.conf", $"""
            [storage]
            driver = "vfs"
            graphroot = "{storage}"
            runroot = "{run}"

            """);
        host.WriteFile("/etc/containers/containers.conf", $"""
            [engine]
            runtime = "runc"
            cgroup_manager = "cgroupfs"
            events_logger = "none"
            lock_type = "file"
            tmp_dir = "{libpodTmp}"
            image_copy_tmp_dir = "{tmp}"

            [engine.runtimes]
            runc = ["{runc}"]

            """);
    }

    public TestCgroup Cgroup { get; }

    /// <summary>Runs `podman ARGS` on the engine host.</summary>
    public EngineResult Run(params string[] arguments) => _host.Execute("podman", arguments);

    /// <summary>Imports <paramref name="rootfs"/> as <see cref="Image"/> (no registry is reachable: the image is built from a folder).</summary>
    public void Import(string rootfs, string workDirectory)
    {
        string tarball = Path.Combine(workDirectory, "rootfs.tar");
        Infrastructure.Run.Checked("tar", "-C", rootfs, "-cf", tarball, ".");
        Run("import", tarball, Image).Succeeds();
        File.Delete(tarball);
    }

    /// <summary>
    /// Starts container <paramref name="name"/> running the echo server on <paramref name="address"/>:<paramref name="port"/>
    /// with network mode <paramref name="network"/> ("host", "ns:/run/netns/X", ...). The host's /usr
    /// comes in read-only for python3, the server folder as /srv.
    /// </summary>
    public EngineResult StartEchoServer(string name, string network, string serverFolder, string address, int port)
        => Run("run", "-d", "--name", name, "--network", network, "--cgroup-parent", Cgroup.Name,
            "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096",
            "-v", "/usr:/usr:ro", "-v", $"{serverFolder}:/srv:ro",
            Image, "/usr/bin/python3", "/srv/" + ContainerFiles.EchoServerFileName, address, port.ToString()).Succeeds();

    /// <summary>Removes every container and image; returns what `ps -a` and `images` still list (should be nothing).</summary>
    public string RemoveEverything()
    {
        Run("rm", "--all", "--force", "--time", "0");
        Run("rmi", "--all", "--force");
        string containers = Run("ps", "--all", "--quiet").Output.Trim();
        string images = Run("images", "--quiet").Output.Trim();
        return (containers.Length > 0 ? $"containers: {containers} " : "") + (images.Length > 0 ? $"images: {images}" : "");
    }
}
