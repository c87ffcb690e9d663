namespace TcpFreeze.Tests.Containers;

/// <summary>
/// LXC 5 (Debian's lxc) on an <see cref="EngineHost"/>: its container path (-P) in the test's folder, one
/// container per name whose rootfs is the busybox folder, its cgroups under the test's cgroup. A host-network
/// container (lxc.net.0.type = none) shares the engine host's network namespace, the test's namespace B.
/// lxc-checkpoint runs CRIU with options of its own; CRIU adds /etc/criu/default.conf (the engine host's, which
/// `tcpfreeze criu-config --engine criu` writes), where the hook is named.
/// </summary>
public sealed class Lxc(EngineHost host, string workDirectory, TestCgroup cgroup)
{
    private readonly string _path = Directory.CreateDirectory(Path.Combine(workDirectory, "lxc")).FullName;

    public EngineResult Run(string program, params string[] arguments) => host.Execute(program, ["-P", _path, .. arguments]);

    /// <summary>
    /// Writes container <paramref name="name"/>'s configuration: the busybox rootfs with the host's /usr and the
    /// server folder read-only, no network of its own, no console or ttys (CRIU cannot dump a host terminal; without
    /// them a daemonized init's stdio is /dev/null), the open-file limit, and the echo server as init. lxc.init.cmd is
    /// split at spaces without regard to quotes, so it names the program directly (no shell).
    /// </summary>
    public void Create(string name, string rootfs, string serverFolder, string address, int port)
    {
        string folder = Directory.CreateDirectory(Path.Combine(_path, name)).FullName;
        File.WriteAllText(Path.Combine(folder, "config"), $"""
            lxc.uts.name = {name}
            lxc.rootfs.path = dir:{rootfs}
            lxc.net.0.type = none
            lxc.mount.auto = proc:rw sys:ro
            lxc.mount.entry = /usr usr none bind,ro 0 0
            lxc.mount.entry = {serverFolder} srv none bind,ro 0 0
            lxc.tty.max = 0
            lxc.pty.max = 0
            lxc.console.path = none
            lxc.prlimit.nofile = 20000
            lxc.cgroup.dir.container = {cgroup.Name.TrimStart('/')}/{name}
            lxc.cgroup.dir.monitor = {cgroup.Name.TrimStart('/')}/{name}-monitor
            lxc.init.cmd = /usr/bin/python3 /srv/{ContainerFiles.EchoServerFileName} {address} {port}

            """);
    }

    public EngineResult Start(string name) => Run("lxc-start", "-n", name, "-d").Succeeds();

    /// <summary>Checkpoints and stops the container (-s) into <paramref name="images"/>.</summary>
    public EngineResult Checkpoint(string name, string images) => Run("lxc-checkpoint", "-n", name, "-s", "-D", images);

    /// <summary>Restores the container from <paramref name="images"/>.</summary>
    public EngineResult Restore(string name, string images) => Run("lxc-checkpoint", "-n", name, "-r", "-D", images);

    /// <summary>The state lxc-info reports ("RUNNING", "STOPPED").</summary>
    public string State(string name) => Run("lxc-info", "-n", name, "-s", "-H").Output.Trim();

    /// <summary>Stops and destroys every container; returns what lxc-ls still lists (should be nothing).</summary>
    public string RemoveEverything()
    {
        foreach (string name in Run("lxc-ls", "-1").Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            Run("lxc-stop", "-n", name, "-k");
            Run("lxc-destroy", "-n", name, "-f");
        }
        return Run("lxc-ls", "-1").Output.Trim();
    }
}
