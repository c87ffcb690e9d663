using TcpFreeze.Tests.Criu;
using TcpFreeze.Tests.Infrastructure;
using Xunit.Abstractions;

namespace TcpFreeze.Tests.Containers;

/// <summary>
/// podman 4.3 and runc 1.1 (Debian's) checkpoint and restore containers whose server
/// holds 100 live streaming connections, with CRIU 4.2.1 and TcpFreeze configured the way
/// a user would: `tcpfreeze criu-config --engine ENGINE --write` in /etc/criu and the hook's
/// settings in /etc/tcpfreeze/criu-hook.conf, both test folders seen only by the engine
/// (see <see cref="EngineHost"/>). Each run leaves a second between checkpoint and restore
/// (the images would travel now) while the clients keep sending.
/// </summary>
[Collection("criu")]
[Trait("Privileges", "root")]
[Trait("Needs", "containers")]
public sealed class ContainerTests(CriuFixture criu, ITestOutputHelper output)
{
    private const int Connections = 100;
    private const string Name = "tcpfreeze-echo";
    private static readonly TimeSpan Gap = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan FlowBound = TimeSpan.FromSeconds(40);

    [RootFact]
    public async Task Podman_checkpoints_and_restores_a_host_network_container_in_place_and_every_connection_survives()
    {
        await using ContainerScenario s = ContainerScenario.Create(criu);
        s.ConfigureTcpFreezeHook("podman");
        s.Podman.Import(s.Rootfs, s.Work);
        s.Podman.StartEchoServer(Name, "host", s.ServerFolder, s.Endpoint.Address.ToString(), ContainerScenario.ServerPort);
        s.StartLoad(Connections);

        EngineResult checkpoint = s.Podman.Run("container", "checkpoint", "--tcp-established", Name).Succeeds();
        Assert.Contains("Exited", s.Podman.Run("ps", "--all", "--filter", $"name={Name}", "--format", "{{.Status}}").Output);
        Thread.Sleep(Gap);
        EngineResult restore = s.Podman.Run("container", "restore", "--tcp-established", Name).Succeeds();

        AssertEveryConnectionSurvives(s, "podman, in place", checkpoint, restore);
        await AssertNothingLeft(s);
    }

    [RootFact]
    public async Task Podman_exports_a_checkpoint_removes_the_container_imports_it_and_every_connection_survives()
    {
        await using ContainerScenario s = ContainerScenario.Create(criu);
        s.ConfigureTcpFreezeHook("podman");
        s.Podman.Import(s.Rootfs, s.Work);
        s.Podman.StartEchoServer(Name, "host", s.ServerFolder, s.Endpoint.Address.ToString(), ContainerScenario.ServerPort);
        s.StartLoad(Connections);
        string archive = Path.Combine(s.Work, "checkpoint.tar");

        EngineResult checkpoint = s.Podman.Run("container", "checkpoint", "--tcp-established", "--export", archive, Name).Succeeds();
        s.Podman.Run("rm", Name).Succeeds();
        Assert.Empty(s.Podman.Run("ps", "--all", "--quiet").Output.Trim());
        // The manifest travels inside the archive, with CRIU's images.
        Assert.Contains($"checkpoint/{TcpFreeze.CriuHooks.FreezeManifest.FileName}", Run.Checked("tar", "-tf", archive));
        Thread.Sleep(Gap);
        EngineResult restore = s.Podman.Run("container", "restore", "--tcp-established", "--import", archive).Succeeds();

        AssertEveryConnectionSurvives(s, "podman, --export/--import", checkpoint, restore);
        await AssertNothingLeft(s);
    }

    [RootFact]
    public async Task Runc_checkpoints_and_restores_a_host_network_container_and_every_connection_survives()
    {
        await using ContainerScenario s = ContainerScenario.Create(criu);
        s.ConfigureTcpFreezeHook("runc");
        string bundle = s.Runc.CreateBundle(Name, s.Rootfs, s.ServerFolder, Runc.Network.Host, s.Endpoint.Address.ToString(), ContainerScenario.ServerPort);
        s.Runc.Start(Name, bundle);
        s.StartLoad(Connections);
        string images = Path.Combine(s.Work, "runc-images"), work = Path.Combine(s.Work, "runc-work");

        EngineResult checkpoint = s.Runc.Checkpoint(Name, images, work);
        Assert.True(checkpoint.ExitCode == 0, $"{checkpoint.Output}\n{CriuLog(work, "dump.log")}");
        Assert.Null(s.Runc.Pid(Name));
        Thread.Sleep(Gap);
        EngineResult restore = s.Runc.Restore(Name, bundle, images, work);
        Assert.True(restore.ExitCode == 0, $"{restore.Output}\n{CriuLog(work, "restore.log")}");

        AssertEveryConnectionSurvives(s, "runc", checkpoint, restore);
        await AssertNothingLeft(s);
    }

    /// <summary>
    /// LXC 5.0 (Debian's lxc): `lxc-checkpoint -s` dumps and stops a host-network container, `-r` restores it.
    /// lxc-checkpoint builds CRIU's command line itself; the hook and --tcp-established come from default.conf
    /// (`criu-config --engine lxc`).
    /// </summary>
    [RootFact]
    public async Task Lxc_checkpoints_and_restores_a_host_network_container_and_every_connection_survives()
    {
        await using ContainerScenario s = ContainerScenario.Create(criu);
        s.ConfigureTcpFreezeHook("lxc");
        s.Lxc.Create(Name, s.Rootfs, s.ServerFolder, s.Endpoint.Address.ToString(), ContainerScenario.ServerPort);
        s.Lxc.Start(Name);
        s.StartLoad(Connections);
        string images = Path.Combine(s.Work, "lxc-images");

        EngineResult checkpoint = s.Lxc.Checkpoint(Name, images);
        Assert.True(checkpoint.ExitCode == 0, $"{checkpoint.Output}\n{CriuLog(images, "dump.log")}");
        Assert.Equal("STOPPED", s.Lxc.State(Name));
        Thread.Sleep(Gap);
        EngineResult restore = s.Lxc.Restore(Name, images);
        Assert.True(restore.ExitCode == 0, $"{restore.Output}\n{CriuLog(images, "restore.log")}");
        Assert.Equal("RUNNING", s.Lxc.State(Name));

        AssertEveryConnectionSurvives(s, "lxc", checkpoint, restore);
        await AssertNothingLeft(s);
    }

    /// <summary>
    /// Docker 20.10 (Debian's docker.io, experimental mode): `docker checkpoint create` stops the container,
    /// `docker start --checkpoint` restores it. Docker has no --tcp-established of its own and passes none to
    /// runc: CRIU takes it from runc.conf, where `criu-config --write` put it with the hook.
    /// </summary>
    [RootFact]
    public async Task Docker_checkpoints_and_restores_a_host_network_container_and_every_connection_survives()
    {
        await using ContainerScenario s = ContainerScenario.Create(criu, privateRun: true);
        s.ConfigureTcpFreezeHook("runc");
        Docker docker = s.StartDocker();
        docker.Import(s.Rootfs, s.Work);
        string id = docker.StartEchoServer(Name, s.ServerFolder, s.Endpoint.Address.ToString(), ContainerScenario.ServerPort).Output.Trim();
        s.StartLoad(Connections);

        EngineResult checkpoint = docker.Run("checkpoint", "create", Name, "moving").Succeeds();
        Assert.Equal("exited", docker.State(Name));
        // The manifest is in the checkpoint Docker keeps, with CRIU's images.
        Assert.True(File.Exists(Path.Combine(docker.ContainerDirectory(id), "checkpoints", "moving", TcpFreeze.CriuHooks.FreezeManifest.FileName)),
            "no manifest in Docker's checkpoint folder");
        Thread.Sleep(Gap);
        EngineResult restore = docker.Run("start", "--checkpoint", "moving", Name).Succeeds();
        Assert.Equal("running", docker.State(Name));

        AssertEveryConnectionSurvives(s, "docker", checkpoint, restore);
        await AssertNothingLeft(s);
    }

    /// <summary>
    /// Moving a container with Docker 20.10: `docker checkpoint create --checkpoint-dir DIR` (a folder that could
    /// be copied to another host), `docker rm`, a new container made from the same image with the same settings.
    /// `docker start --checkpoint-dir DIR` is refused by this dockerd ("custom checkpointdir is not supported"),
    /// so the checkpoint folder goes into the new container's own checkpoints folder in dockerd's data root (the
    /// usual way round it) and `docker start --checkpoint NAME` restores it.
    /// </summary>
    [RootFact]
    public async Task Docker_checkpoints_into_a_folder_restores_into_a_new_container_and_every_connection_survives()
    {
        await using ContainerScenario s = ContainerScenario.Create(criu, privateRun: true);
        s.ConfigureTcpFreezeHook("runc");
        Docker docker = s.StartDocker();
        docker.Import(s.Rootfs, s.Work);
        docker.StartEchoServer(Name, s.ServerFolder, s.Endpoint.Address.ToString(), ContainerScenario.ServerPort);
        s.StartLoad(Connections);
        string folder = Directory.CreateDirectory(Path.Combine(s.Work, "docker-checkpoints")).FullName;

        EngineResult checkpoint = docker.Run("checkpoint", "create", "--checkpoint-dir", folder, Name, "moving").Succeeds();
        Assert.True(File.Exists(Path.Combine(folder, "moving", TcpFreeze.CriuHooks.FreezeManifest.FileName)), "no manifest in the checkpoint folder");
        docker.Run("rm", Name).Succeeds();
        Assert.Empty(docker.Run("ps", "--all", "--quiet").Output.Trim());
        Thread.Sleep(Gap);
        string moved = docker.CreateEchoServer(Name + "-moved", s.ServerFolder, s.Endpoint.Address.ToString(), ContainerScenario.ServerPort).Output.Trim();
        EngineResult refused = docker.Run("start", "--checkpoint-dir", folder, "--checkpoint", "moving", moved);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("custom checkpointdir is not supported", refused.Output);
        Run.Checked("cp", "-a", Path.Combine(folder, "moving"), Path.Combine(docker.ContainerDirectory(moved), "checkpoints", "moving"));
        EngineResult restore = docker.Run("start", "--checkpoint", "moving", moved).Succeeds();
        Assert.Equal("running", docker.State(Name + "-moved"));

        AssertEveryConnectionSurvives(s, "docker, --checkpoint-dir / rm / create / start", checkpoint, restore);
        await AssertNothingLeft(s);
    }

    /// <summary>The Docker run above with CRIU's lock switched off and a hook that only logs: connections are lost.</summary>
    [RootFact]
    public async Task Without_TcpFreeze_the_same_docker_run_loses_connections()
    {
        await using ContainerScenario s = ContainerScenario.Create(criu, privateRun: true);
        string steps = s.ConfigureLoggingHook();
        Docker docker = s.StartDocker();
        docker.Import(s.Rootfs, s.Work);
        docker.StartEchoServer(Name, s.ServerFolder, s.Endpoint.Address.ToString(), ContainerScenario.ServerPort);
        s.StartLoad(Connections);

        // Once in a CI run (not reproduced in many since), CRIU failed this lock-less dump 0.35 s in ("criu failed:
        // type NOTIFY errno 0"). This control is about what happens to the connections, not about CRIU's dump without
        // a lock, so a failed dump is written out with its CRIU log and tried once more; the container still runs.
        string checkpointName = "moving";
        EngineResult checkpoint = docker.Run("checkpoint", "create", Name, checkpointName);
        if (checkpoint.ExitCode != 0)
        {
            output.WriteLine($"the first lock-less checkpoint failed; trying once more:\n{checkpoint.Output}{checkpoint.CriuLogTail()}");
            Assert.Equal("running", docker.State(Name));
            checkpointName = "moving-again";
            checkpoint = docker.Run("checkpoint", "create", Name, checkpointName).Succeeds();
        }
        Thread.Sleep(Gap);
        EngineResult restore = docker.Run("start", "--checkpoint", checkpointName, Name).Succeeds();

        AssertConnectionsLost(s, "docker, no lock", checkpoint, restore);
        Assert.Equal(["pre-dump", "post-dump", "pre-restore", "setup-namespaces", "post-setup-namespaces", "post-restore", "pre-resume", "post-resume"],
            File.ReadAllLines(steps));
        await AssertNothingLeft(s);
    }

    /// <summary>
    /// containerd 1.6's ctr (Debian's containerd): `ctr containers checkpoint --task` pauses the task, dumps it
    /// and lets it run on (its checkpoint options say Exit: false, and ctr has no flag to change that). The hook
    /// freezes every connection for the dump; its dump watcher sees CRIU end while the task still runs and thaws
    /// them at once, so the running container keeps them all (a watcher that did not would leave them frozen for
    /// the 60-second lease). No lock at all keeps them too here (the task only pauses), so this is no proof of
    /// the lock, only that the hook reaches CRIU through containerd and gives the connections back.
    /// </summary>
    [RootFact]
    public async Task Containerd_checkpoints_a_host_network_container_that_keeps_running_and_every_connection_survives()
    {
        await using ContainerScenario s = ContainerScenario.Create(criu, privateRun: true);
        Containerd containerd = StartContainerdEchoServerUnderLoad(s);

        EngineResult checkpoint = containerd.Run("containers", "checkpoint", "--task", "--image", "--rw", Name, CheckpointReference).Succeeds();
        Assert.Equal("RUNNING", containerd.TaskStatus(Name));
        Assert.Contains(containerd.CheckpointFiles(CheckpointReference), f => Path.GetFileName(f) == TcpFreeze.CriuHooks.FreezeManifest.FileName);

        bool flowed = s.EveryConnectionFlows(5, FlowBound);
        output.WriteLine($"containerd, checkpoint that leaves the task running: checkpoint {checkpoint.Elapsed.TotalMilliseconds:F0} ms, " +
                         $"{s.ConnectionsKept} of {Connections} connections kept");
        WriteHookLog(s);
        Assert.True(flowed, $"not every connection flowed after the checkpoint: {string.Join("; ", s.Load!.Failures.Take(5))}\n{s.HookLog}");
        Assert.Empty(s.Load!.Failures);
        Assert.Contains($"pre-dump: froze {Connections} connections and 1 listening endpoints", s.HookLog);
        Assert.Contains($"still runs (--leave-running, pre-dump or a failed dump): thawed {Connections} connections and 1 listening endpoints", s.HookLog);
        // The watcher thaws but leaves the programs attached (the next freeze is fast): detach, as an operator would.
        TcpFreezer.Detach(s.ServerSide);
        await AssertNothingLeft(s);
    }

    /// <summary>
    /// containerd 1.6 cannot move a container: the checkpoint that stops the task (`ctr tasks checkpoint --exit`)
    /// writes an image that `ctr containers restore` rejects, because the task checkpoint names the container's
    /// image under the annotation "image.name" and the restore looks for another one. The hook did its part
    /// (every connection frozen, the manifest in the checkpoint's CRIU images); the connections stay frozen
    /// until the test thaws them. This pins the statement in docs/containers.md: when a containerd update fixes it, this fails.
    /// </summary>
    [RootFact]
    public async Task Containerd_1_6_cannot_restore_the_checkpoint_that_stops_a_container()
    {
        await using ContainerScenario s = ContainerScenario.Create(criu, privateRun: true);
        Containerd containerd = StartContainerdEchoServerUnderLoad(s);

        EngineResult checkpoint = containerd.Run("tasks", "checkpoint", "--exit", Name).Succeeds();
        string reference = checkpoint.Output.Trim();
        Assert.StartsWith($"containerd.io/checkpoint/{Name}:", reference);
        Assert.Equal("STOPPED", containerd.TaskStatus(Name));
        Assert.Contains(containerd.CheckpointFiles(reference), f => Path.GetFileName(f) == TcpFreeze.CriuHooks.FreezeManifest.FileName);
        Assert.Contains($"pre-dump: froze {Connections} connections and 1 listening endpoints", s.HookLog);
        containerd.Run("tasks", "rm", Name).Succeeds();
        containerd.Run("containers", "rm", Name).Succeeds();

        EngineResult restore = containerd.Run("containers", "restore", "--live", "--rw", Name, reference);
        output.WriteLine($"containerd, `tasks checkpoint --exit`: checkpoint {checkpoint.Elapsed.TotalMilliseconds:F0} ms; " +
                         $"`containers restore --live --rw` exited {restore.ExitCode}: {restore.Output.Trim()}");
        WriteHookLog(s);
        Assert.Equal(1, restore.ExitCode);
        Assert.Equal("ctr: image name not found in index", restore.Output.Trim());
        Assert.Null(containerd.TaskStatus(Name));
        TcpFreezer.Detach(s.ServerSide);
        await AssertNothingLeft(s);
    }

    private const string CheckpointReference = "localhost/tcpfreeze-checkpoint:moving";

    /// <summary>
    /// The same podman runs with CRIU's lock switched off and a hook that only logs: the
    /// clients' segments reach a namespace with no socket for them and are answered with
    /// resets. This is what proves the tests above can fail.
    /// </summary>
    [RootTheory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Without_TcpFreeze_the_same_podman_run_loses_connections(bool ownNetworkNamespace)
    {
        await using ContainerScenario s = ContainerScenario.Create(criu, engineInServerNamespace: !ownNetworkNamespace);
        string steps = s.ConfigureLoggingHook();
        s.Podman.Import(s.Rootfs, s.Work);
        s.Podman.StartEchoServer(Name, ownNetworkNamespace ? $"ns:/run/netns/{s.Network.NameB}" : "host", s.ServerFolder, s.Endpoint.Address.ToString(), ContainerScenario.ServerPort);
        s.StartLoad(Connections);

        EngineResult checkpoint = s.Podman.Run("container", "checkpoint", "--tcp-established", Name).Succeeds();
        Thread.Sleep(Gap);
        EngineResult restore = s.Podman.Run("container", "restore", "--tcp-established", Name).Succeeds();

        bool allFlowed = s.EveryConnectionFlows(5, TimeSpan.FromSeconds(15));
        int kept = s.ConnectionsKept;
        output.WriteLine($"no lock ({(ownNetworkNamespace ? "own network namespace" : "host network")}): checkpoint {checkpoint.Elapsed.TotalMilliseconds:F0} ms, " +
                         $"restore {restore.Elapsed.TotalMilliseconds:F0} ms, {kept} of {Connections} connections kept; first failures: {string.Join("; ", s.Load!.Failures.Take(3))}");
        Assert.False(allFlowed, "every connection survived without any lock: this scenario cannot tell a working lock from none");
        Assert.True(kept < Connections);
        // The configuration reached CRIU through the engine: the logging hook saw every step.
        string[] expected = ownNetworkNamespace
            ? ["pre-dump", "network-lock", "post-dump", "pre-restore", "setup-namespaces", "post-setup-namespaces", "post-restore", "network-unlock", "pre-resume", "post-resume"]
            : ["pre-dump", "post-dump", "pre-restore", "setup-namespaces", "post-setup-namespaces", "post-restore", "pre-resume", "post-resume"];
        Assert.Equal(expected, File.ReadAllLines(steps));
        await AssertNothingLeft(s);
    }

    /// <summary>
    /// A container in a network namespace of its own that outlives it (a pod's, here B
    /// joined with --network ns:PATH): CRIU would lock that namespace as a whole, but
    /// `network-lock skip` switches that off, so the hook takes the lock itself.
    /// </summary>
    [RootFact]
    public async Task Podman_container_in_a_network_namespace_of_its_own_is_locked_as_a_whole_and_every_connection_survives()
    {
        await using ContainerScenario s = ContainerScenario.Create(criu, engineInServerNamespace: false);
        s.ConfigureTcpFreezeHook("podman");
        s.Podman.Import(s.Rootfs, s.Work);
        s.Podman.StartEchoServer(Name, $"ns:/run/netns/{s.Network.NameB}", s.ServerFolder, s.Endpoint.Address.ToString(), ContainerScenario.ServerPort);
        s.StartLoad(Connections);

        EngineResult checkpoint = s.Podman.Run("container", "checkpoint", "--tcp-established", Name).Succeeds();
        Assert.True(ContainerScenario.NamespaceLockIn($"/run/netns/{s.Network.NameB}"), "B is not locked between checkpoint and restore");
        Thread.Sleep(Gap);
        EngineResult restore = s.Podman.Run("container", "restore", "--tcp-established", Name).Succeeds();

        AssertEveryConnectionSurvives(s, "podman, own network namespace", checkpoint, restore, perConnection: false);
        Assert.Contains("network-lock: locked the network namespace of PID", s.HookLog);
        Assert.Contains("setup-namespaces: locked the network namespace of the restored PID", s.HookLog);
        Assert.Contains("network-unlock: released the lock", s.HookLog);
        Assert.False(ContainerScenario.NamespaceLockIn($"/run/netns/{s.Network.NameB}"), "the lock stayed in B after the restore");
        await AssertNothingLeft(s);
    }

    /// <summary>
    /// A container with a fresh network namespace that runc creates: CRIU dumps the namespace
    /// with the tasks and creates it again on restore, where the hook locks it before any
    /// socket exists and unlocks it at the end.
    /// </summary>
    [RootFact]
    public async Task Runc_container_with_a_private_network_namespace_checkpoints_and_restores_and_keeps_no_lock()
    {
        await using ContainerScenario s = ContainerScenario.Create(criu);
        s.ConfigureTcpFreezeHook("runc");
        string bundle = s.Runc.CreateBundle(Name, s.Rootfs, s.ServerFolder, Runc.Network.Private, "0.0.0.0", ContainerScenario.ServerPort);
        s.Runc.Start(Name, bundle);
        int before = s.Runc.Pid(Name) ?? throw new InvalidOperationException("runc reports no PID");
        Assert.True(WaitUntil(() => SocketListens(before), TimeSpan.FromSeconds(20)), "the server in the private namespace does not listen");
        string images = Path.Combine(s.Work, "runc-images"), work = Path.Combine(s.Work, "runc-work");

        EngineResult checkpoint = s.Runc.Checkpoint(Name, images, work);
        Assert.True(checkpoint.ExitCode == 0, $"{checkpoint.Output}\n{CriuLog(work, "dump.log")}");
        EngineResult restore = s.Runc.Restore(Name, bundle, images, work);
        Assert.True(restore.ExitCode == 0, $"{restore.Output}\n{CriuLog(work, "restore.log")}");

        int after = s.Runc.Pid(Name) ?? throw new InvalidOperationException("runc reports no PID after the restore");
        Assert.True(SocketListens(after), "the restored server does not listen");
        Assert.False(ContainerScenario.NamespaceLockIn($"/proc/{after}/ns/net"), "the restored namespace is still locked");
        Assert.Contains("network-lock: locked", s.HookLog);
        Assert.Contains("setup-namespaces: locked", s.HookLog);
        Assert.Contains("network-unlock: released", s.HookLog);
        output.WriteLine($"runc, private network namespace: checkpoint {checkpoint.Elapsed.TotalMilliseconds:F0} ms, restore {restore.Elapsed.TotalMilliseconds:F0} ms");
        WriteHookLog(s);
        await AssertNothingLeft(s);
    }

    /// <summary>The containerd tests' start: the hook configured for runc, containerd, the echo server container, the clients.</summary>
    private static Containerd StartContainerdEchoServerUnderLoad(ContainerScenario s)
    {
        s.ConfigureTcpFreezeHook("runc");
        Containerd containerd = s.StartContainerd();
        containerd.Import(s.Rootfs, s.Work);
        containerd.StartEchoServer(Name, s.ServerFolder, s.Endpoint.Address.ToString(), ContainerScenario.ServerPort);
        s.StartLoad(Connections);
        return containerd;
    }

    private void AssertEveryConnectionSurvives(ContainerScenario s, string label, EngineResult checkpoint, EngineResult restore, bool perConnection = true)
    {
        bool flowed = s.EveryConnectionFlows(5, FlowBound);
        output.WriteLine($"{label}: checkpoint {checkpoint.Elapsed.TotalMilliseconds:F0} ms, restore {restore.Elapsed.TotalMilliseconds:F0} ms, " +
                         $"{s.ConnectionsKept} of {Connections} connections kept");
        WriteHookLog(s);
        Assert.True(flowed, $"not every connection flowed after the restore: {string.Join("; ", s.Load!.Failures.Take(5))}; " +
                            $"{s.Load.Connections.Count(c => c.Failure is null)} healthy\n{s.HookLog}");
        Assert.Empty(s.Load!.Failures);
        if (perConnection)
        {
            Assert.Contains($"pre-dump: froze {Connections} connections and 1 listening endpoints", s.HookLog);
            Assert.Contains($"pre-restore: froze {Connections} connections and 1 listening endpoints", s.HookLog);
            Assert.Contains($"pre-resume: thawed {Connections} connections and 1 listening endpoints", s.HookLog);
            KernelState.AssertNothingLeft(s.Network.B, s.ServerSide);
        }
    }

    private void AssertConnectionsLost(ContainerScenario s, string label, EngineResult checkpoint, EngineResult restore)
    {
        bool allFlowed = s.EveryConnectionFlows(5, TimeSpan.FromSeconds(15));
        int kept = s.ConnectionsKept;
        output.WriteLine($"{label}: checkpoint {checkpoint.Elapsed.TotalMilliseconds:F0} ms, restore {restore.Elapsed.TotalMilliseconds:F0} ms, " +
                         $"{kept} of {Connections} connections kept; first failures: {string.Join("; ", s.Load!.Failures.Take(3))}");
        Assert.False(allFlowed, "every connection survived without any lock: this scenario cannot tell a working lock from none");
        Assert.True(kept < Connections);
    }

    private void WriteHookLog(ContainerScenario s)
    {
        foreach (string line in s.HookLog.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            output.WriteLine(line);
    }

    private static async Task AssertNothingLeft(ContainerScenario s)
    {
        IReadOnlyList<string> left = await s.TearDown();
        Assert.True(left.Count == 0, "left behind: " + string.Join("\n", left));
    }

    private static string CriuLog(string work, string name)
    {
        string path = Path.Combine(work, name);
        return File.Exists(path) ? CriuRunner.Tail(File.ReadAllText(path)) : $"(no {name})";
    }

    /// <summary>Whether process <paramref name="pid"/> has a listening TCP socket (state 0A) in its namespace's /proc/net/tcp.</summary>
    private static bool SocketListens(int pid)
    {
        try
        {
            return File.ReadLines($"/proc/{pid}/net/tcp").Skip(1).Any(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[3] == "0A");
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static bool WaitUntil(Func<bool> condition, TimeSpan timeout)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout)
                return false;
            Thread.Sleep(50);
        }
        return true;
    }
}
