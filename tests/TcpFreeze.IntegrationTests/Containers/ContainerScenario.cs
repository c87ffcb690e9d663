using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Criu;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.Containers;

/// <summary>
/// What every container test sets up and takes down: a test network (clients in A, the
/// server's network in B), an engine host (in B for host-network containers, or in a
/// namespace of its own), a pin root, a cgroup, the busybox rootfs and the echo server,
/// podman and runc on that host, and the hook's settings file. <see cref="TearDown"/>
/// removes it all, also after a failure, and lists what it found left behind.
/// </summary>
public sealed class ContainerScenario : IAsyncDisposable
{
    public const int ServerPort = 7000;
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(25);

    private readonly CriuFixture _criu;
    private readonly HostState _before;
    private readonly List<string> _leftovers = [];
    private bool _tornDown;

    private ContainerScenario(CriuFixture criu, string work, TestNetwork network, PinRoot pins, EngineHost host, TestCgroup cgroup, HostState before)
    {
        _criu = criu;
        Work = work;
        Network = network;
        Pins = pins;
        Host = host;
        Cgroup = cgroup;
        _before = before;
        Rootfs = ContainerFiles.BuildBusyboxRootfs(Path.Combine(work, "rootfs"));
        ServerFolder = ContainerFiles.WriteServer(Path.Combine(work, "srv"));
        Podman = new Podman(host, work, cgroup);
        Runc = new Runc(host, work, cgroup);
        Lxc = new Lxc(host, work, cgroup);
    }

    public string Work { get; }
    public TestNetwork Network { get; }
    public PinRoot Pins { get; }
    public EngineHost Host { get; }
    public TestCgroup Cgroup { get; }
    public string Rootfs { get; }
    public string ServerFolder { get; }
    public Podman Podman { get; }
    public Runc Runc { get; }
    public Lxc Lxc { get; }

    /// <summary>dockerd, once <see cref="StartDocker"/> started it (on a host with a private /run).</summary>
    public Docker? Docker { get; private set; }

    /// <summary>containerd, once <see cref="StartContainerd"/> started it (on a host with a private /run).</summary>
    public Containerd? Containerd { get; private set; }
    public ClientLoad? Load { get; private set; }
    public string HookLogFile => Path.Combine(Work, "hook.log");
    public string HookLog => File.Exists(HookLogFile) ? File.ReadAllText(HookLogFile) : "";
    public IPEndPoint Endpoint => new(Network.AddressB(AddressFamily.InterNetwork), ServerPort);

    /// <summary>The server's namespace as the hook sees it when the engine runs there.</summary>
    public FreezerOptions ServerSide => Pins.Options(Network.B);

    /// <summary>
    /// Sets everything up. With <paramref name="engineInServerNamespace"/> the engine runs in
    /// namespace B, so a host-network container serves there; otherwise it runs in a
    /// namespace of its own and a container reaches B only by joining it (ns:/run/netns/B).
    /// <paramref name="privateRun"/> gives the engine host a /run of its own (see <see cref="EngineHost"/>), which
    /// dockerd and containerd need.
    /// </summary>
    public static ContainerScenario Create(CriuFixture criu, bool engineInServerNamespace = true, bool privateRun = false)
    {
        HostState before = HostState.Read();
        string work = Directory.CreateTempSubdirectory("tcpfreeze-containers-").FullName;
        var network = TestNetwork.Create();
        PinRoot? pins = null;
        EngineHost? host = null;
        try
        {
            pins = new PinRoot();
            host = EngineHost.Start(work, engineInServerNamespace ? network.NameB : null, CriuDirectory(criu), privateRun);
            return new ContainerScenario(criu, work, network, pins, host, new TestCgroup(), before);
        }
        catch
        {
            host?.Dispose();
            pins?.Dispose();
            network.Dispose();
            Directory.Delete(work, recursive: true);
            throw;
        }
    }

    /// <summary>A folder whose `criu` is CRIU 4.2.1, to put first on the engine's PATH.</summary>
    private static string CriuDirectory(CriuFixture criu)
    {
        string? folder = Path.GetDirectoryName(criu.Criu);
        if (!string.IsNullOrEmpty(folder) && Path.GetFileName(criu.Criu) == "criu")
            return folder;
        return Environment.GetEnvironmentVariable("TCPFREEZE_BIN") is { Length: > 0 } bin ? bin : "/var/cache/tcpfreeze/bin";
    }

    /// <summary>
    /// The TcpFreeze set-up a user would make: the hook's settings in /etc/tcpfreeze/criu-hook.conf
    /// (the test's pin root, a log file, a 60-second lease) and `tcpfreeze criu-config --engine
    /// ENGINE --write` for /etc/criu (both the engine host's test folders).
    /// </summary>
    public void ConfigureTcpFreezeHook(string engine)
    {
        File.WriteAllText(Path.Combine(Host.HookConfigDirectory, "criu-hook.conf"), $"""
            # written by {nameof(ContainerScenario)}
            lease-seconds = 60
            pin-root = {Pins.Path}
            log-file = {HookLogFile}

            """);
        CliResult written = TcpFreezeCommand.Run(["criu-config", "--engine", engine, "--hook", _criu.Hook, "--write", "--config-dir", Host.CriuConfigDirectory]).Succeeds();
        string file = engine is "criu" or "lxc" ? CriuConfiguration.FileNameFor(CriuEngine.Criu) : CriuConfiguration.FileNameFor(CriuEngine.Runc);
        Assert.Contains(file, written.Output + written.Error);
        Assert.Equal([file], Directory.GetFiles(Host.CriuConfigDirectory).Select(Path.GetFileName));
    }

    /// <summary>Starts dockerd on the engine host (created with privateRun).</summary>
    public Docker StartDocker()
    {
        Docker = new Docker(Host, Work, Cgroup);
        Docker.Start();
        return Docker;
    }

    /// <summary>Starts containerd on the engine host (created with privateRun).</summary>
    public Containerd StartContainerd()
    {
        Containerd = new Containerd(Host, Work, Cgroup);
        Containerd.Start();
        return Containerd;
    }

    /// <summary>The negative control: CRIU's lock switched off and a hook that only logs the steps.</summary>
    public string ConfigureLoggingHook()
    {
        string log = Path.Combine(Work, "logging-hook.log");
        string script = ContainerFiles.WriteLoggingHook(Path.Combine(Work, "logging-hook.sh"), log);
        File.WriteAllText(Path.Combine(Host.CriuConfigDirectory, "runc.conf"), $"tcp-established\nnetwork-lock skip\naction-script {script}\n");
        return log;
    }

    /// <summary>Waits until the server accepts, then starts <paramref name="connections"/> streaming clients in A and waits until each got replies.</summary>
    public ClientLoad StartLoad(int connections)
    {
        WaitUntilListening(TimeSpan.FromSeconds(30));
        Load = ClientLoad.Stream(Network.A, Endpoint, connections, Interval);
        Assert.True(Load.WaitForProgress(_ => 3, TimeSpan.FromSeconds(30)), "the clients did not get going: " + string.Join("; ", Load.Failures.Take(5)));
        return Load;
    }

    private void WaitUntilListening(TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            using Socket probe = TcpPair.NewClient(Network.A, AddressFamily.InterNetwork);
            try
            {
                if (probe.ConnectAsync(Endpoint).Wait(TimeSpan.FromSeconds(1)))
                    return;
            }
            catch (AggregateException e) when (e.InnerException is SocketException)
            {
            }
            Assert.True(clock.Elapsed < timeout, $"nothing listens on {Endpoint} after {timeout}");
            Thread.Sleep(50);
        }
    }

    /// <summary>How many connections are still healthy.</summary>
    public int ConnectionsKept => Load!.Connections.Count(c => c.Failure is null);

    /// <summary>
    /// Waits until every connection got <paramref name="more"/> more replies or one failed,
    /// within a bound; returns whether all flowed.
    /// </summary>
    public bool EveryConnectionFlows(int more, TimeSpan within)
    {
        long[] start = Load!.Snapshot();
        return Load.WaitForProgress(id => start[id] + more, within);
    }

    /// <summary>Whether the namespace lock table is in network namespace <paramref name="nsPath"/>.</summary>
    public static bool NamespaceLockIn(string nsPath)
        => Run.Capture("nsenter", [$"--net={nsPath}", "nft", "list", "table", "inet", NamespaceLock.Table], null, TimeSpan.FromSeconds(20)).ExitCode == 0;

    /// <summary>
    /// Stops the clients, removes containers, images, the engine host, cgroups, pins,
    /// namespaces and folders, and returns what was left behind by the engines or the hook
    /// (empty when nothing): containers, images, a cgroup still holding a process, a pin
    /// directory or XDP/TC program in B, the namespace lock, a running dump watcher, a
    /// dockerd or containerd that had to be killed or a process of theirs still running, or
    /// any change to /etc/criu, /run/runc, /var/lib/containers, /run/libpod, /run/containers,
    /// /dev/shm/libpod_lock, /run/docker, /var/lib/docker, /run/docker.sock, /run/containerd
    /// or /var/lib/containerd.
    /// </summary>
    public async Task<IReadOnlyList<string>> TearDown()
    {
        if (_tornDown)
            return _leftovers;
        _tornDown = true;
        if (Load is not null)
            await Load.DisposeAsync();
        Try("podman", () => Podman.RemoveEverything());
        Try("runc", () => Runc.RemoveEverything());
        Try("lxc", () => Lxc.RemoveEverything());
        Try("docker", () => Docker?.RemoveEverything() ?? "");
        Try("containerd", () => Containerd?.RemoveEverything() ?? "");
        Try("dump watcher", DumpWatchers);
        Host.Dispose();
        Try("pins", () => Directory.Exists(TcpFreezer.GetPinDirectory(ServerSide)) ? $"{TcpFreezer.GetPinDirectory(ServerSide)} is still there" : "");
        Try("XDP", () => Run.Checked("ip", "-n", Network.NameB, "-d", "link", "show", "dev", TestNetwork.Interface).Contains("prog/xdp") ? "an XDP program is attached to veth0 in B" : "");
        Try("TC", () => Run.Checked("tc", "-n", Network.NameB, "filter", "show", "dev", TestNetwork.Interface, "egress").Contains("tf_tc_egress") ? "TcpFreeze's TC filter is on veth0 in B" : "");
        Try("namespace lock", () => NamespaceLockIn($"/run/netns/{Network.NameB}") ? $"the {NamespaceLock.Table} table is still in B" : "");
        Try("detach", () =>
        {
            TcpFreezer.Detach(ServerSide);
            return "";
        });
        Try("cgroups", () => string.Join("; ", Cgroup.Remove()));
        Try("pin root", () =>
        {
            Pins.Dispose();
            return "";
        });
        Network.Dispose();
        HostState after = HostState.Read();
        if (after != _before)
            _leftovers.Add($"the machine changed: before {_before}, after {after}");
        try
        {
            Directory.Delete(Work, recursive: true);
        }
        catch (IOException e)
        {
            _leftovers.Add($"{Work}: {e.Message}");
        }
        return _leftovers;
    }

    private void Try(string what, Func<string> check)
    {
        try
        {
            string left = check();
            if (left.Length > 0)
                _leftovers.Add($"{what}: {left}");
        }
        catch (Exception e)
        {
            _leftovers.Add($"{what}: {e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>Dump watchers of this test's hook that still run.</summary>
    private string DumpWatchers()
    {
        var running = new List<string>();
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid))
                continue;
            try
            {
                string[] argv = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0');
                if (argv.Length > 1 && argv[0] == _criu.Hook && argv[1] == DumpWatcher.Argument)
                    running.Add($"PID {pid}");
            }
            catch (IOException)
            {
            }
        }
        return running.Count > 0 ? "still running: " + string.Join(", ", running) : "";
    }

    public async ValueTask DisposeAsync() => await TearDown();
}
