using System.Net;
using System.Net.Sockets;
using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.Criu;

/// <summary>The hook's handlers called in-process against real sockets (no CRIU run).</summary>
[Trait("Privileges", "root")]
public sealed class HookHandlerTests : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("tcpfreeze-hook-").FullName;

    /// <summary>
    /// A server with two connections where pre-dump saw only the early one and its listener (the
    /// manifest says so), then post-dump run in-process. <paramref name="preDumpFroze"/>: whether
    /// pre-dump's freeze of them is still in place.
    /// </summary>
    private void PostDumpAfterPreDump(bool preDumpFroze, Action<int, string, ConnectionKey, ConnectionKey, FreezerOptions> check)
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        var endpoint = new IPEndPoint(network.AddressB(AddressFamily.InterNetwork), 7000);
        using DumpableServer server = EchoServer.Start(network.NameB, _work, endpoint);
        using Socket early = TcpPair.NewClient(network.A, AddressFamily.InterNetwork), late = TcpPair.NewClient(network.A, AddressFamily.InterNetwork);
        early.Connect(endpoint);
        late.Connect(endpoint);
        ConnectionKey earlyKey = new ConnectionKey((IPEndPoint)early.LocalEndPoint!, endpoint).Reversed();
        ConnectionKey lateKey = new ConnectionKey((IPEndPoint)late.LocalEndPoint!, endpoint).Reversed();
        FreezeManifest.Create(server.Pid, TimeSpan.FromSeconds(30), [earlyKey], [new EndpointKey(endpoint)]).Write(_work);

        FreezerOptions options = pins.Options(network.B);
        var log = new StringWriter();
        var settings = new HookSettings { PinRoot = pins.Path, Lease = TimeSpan.FromSeconds(30) };
        var environment = new CriuEnvironment(CriuAction.PostDump, "post-dump", _work, server.Pid);
        try
        {
            int code = network.B.Run(() =>
            {
                using (TcpFreezer attached = TcpFreezer.Attach(options))
                    if (preDumpFroze)
                        attached.Freeze([earlyKey], [new EndpointKey(endpoint)], TimeSpan.FromSeconds(30), FreezeTiming.JustInTime);
                return CriuHookDispatcher.CreateTcpFreeze().Dispatch(environment, new HookContext(settings, log, Environment.ProcessId, null));
            });
            check(code, log.ToString(), earlyKey, lateKey, options);
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }

    [RootFact]
    public void Post_dump_freezes_connections_that_appeared_after_pre_dump_and_adds_them_to_the_manifest()
        => PostDumpAfterPreDump(preDumpFroze: true, (code, log, earlyKey, lateKey, options) =>
        {
            Assert.True(code == 0, log);
            Assert.Contains("post-dump: froze 1 connections and 0 listening endpoints that appeared since pre-dump", log);
            using TcpFreezer freezer = TcpFreezer.Open(options);
            Assert.Equal(new[] { earlyKey, lateKey }.Select(k => k.ToString()).Order(), freezer.ListConnections().Select(c => c.Key.ToString()).Order());
            Assert.Equal(new[] { earlyKey, lateKey }.Select(k => k.ToString()).Order(), FreezeManifest.Read(_work).Connections.Order());
        });

    [RootFact]
    public void Post_dump_fails_the_dump_when_what_pre_dump_froze_is_no_longer_frozen()
        => PostDumpAfterPreDump(preDumpFroze: false, (code, log, earlyKey, _, options) =>
        {
            // pre-dump's entry is gone (its lease ended with no watcher to renew it): CRIU must not go on
            // and kill the tasks, since peers' segments may have reached sockets it had already read.
            Assert.NotEqual(0, code);
            Assert.Contains($"post-dump: 1 of the 1 connections pre-dump froze were no longer frozen (e.g. {earlyKey})", log);
            Assert.Contains("failing the dump, so that CRIU leaves the tasks running", log);
            using TcpFreezer freezer = TcpFreezer.Open(options);
            Assert.Empty(freezer.ListConnections()); // and nothing new was frozen
            Assert.Equal([earlyKey.ToString()], FreezeManifest.Read(_work).Connections);
        });

    [RootFact]
    public void Network_lock_silences_a_namespace_of_its_own_as_a_whole_and_network_unlock_lets_every_byte_through_again()
    {
        using var own = new TreeWithItsOwnNamespace();
        (TestNetwork network, IPEndPoint endpoint, TcpPair pair, ScriptProcess task, StringWriter log) = (own.Network, own.Endpoint, own.Pair, own.Task, own.Log);
        int Step(CriuAction action, string name) => own.Step(action, name);
        try
        {
            Assert.True(Step(CriuAction.NetworkLock, "network-lock") == 0, log.ToString());
            Assert.True(Step(CriuAction.SetupNamespaces, "setup-namespaces") == 0, log.ToString()); // taking it again is harmless
            Assert.True(NamespaceLock.IsTaken(task.Pid));
            Assert.Contains("network-lock: locked the network namespace of PID", log.ToString());

            pair.Client.Send("frozen"u8);
            Assert.False(TcpPair.Readable(pair.Server, TimeSpan.FromMilliseconds(400)), "a byte crossed the lock");
            using (Socket probe = TcpPair.NewClient(network.A, AddressFamily.InterNetwork))
            {
                // Neither accepted nor refused: the SYN is dropped, no RST comes back.
                Task connect = probe.ConnectAsync(endpoint);
                Assert.False(connect.Wait(TimeSpan.FromMilliseconds(400)), "a new connection got an answer through the lock");
            }

            Assert.True(Step(CriuAction.NetworkUnlock, "network-unlock") == 0, log.ToString());
            Assert.False(NamespaceLock.IsTaken(task.Pid));
            Assert.Equal("frozen", System.Text.Encoding.ASCII.GetString(TcpPair.ReadExactly(pair.Server, 6, TimeSpan.FromSeconds(10))));
            TcpPair.AssertRoundTrip(pair.Server, pair.Client, "thawed");
            Assert.Equal(TcpPair.Established, TcpPair.TcpState(pair.Client));
            Assert.True(Step(CriuAction.NetworkUnlock, "network-unlock") == 0, "releasing twice must be harmless: " + log);
        }
        finally
        {
            NamespaceLock.Release(task.Pid);
        }
    }

    [RootFact]
    public void Post_resume_releases_a_namespace_lock_that_network_unlock_left_behind()
    {
        using var own = new TreeWithItsOwnNamespace();
        (TcpPair pair, ScriptProcess task, StringWriter log) = (own.Pair, own.Task, own.Log);
        int Step(CriuAction action, string name) => own.Step(action, name);
        try
        {
            Assert.True(Step(CriuAction.SetupNamespaces, "setup-namespaces") == 0, log.ToString());
            pair.Client.Send("held"u8);
            Assert.False(TcpPair.Readable(pair.Server, TimeSpan.FromMilliseconds(300)), "a byte crossed the lock");

            // network-unlock never ran (killed); post-resume is the last step CRIU runs.
            Assert.True(Step(CriuAction.PostResume, "post-resume") == 0, log.ToString());
            Assert.False(NamespaceLock.IsTaken(task.Pid));
            Assert.Contains($"post-resume: the network namespace of PID {task.Pid} was still locked", log.ToString());
            Assert.Equal("held", System.Text.Encoding.ASCII.GetString(TcpPair.ReadExactly(pair.Server, 4, TimeSpan.FromSeconds(10))));

            // After a normal restore there is nothing to release, and post-resume says nothing.
            int lines = log.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;
            Assert.True(Step(CriuAction.PostResume, "post-resume") == 0, log.ToString());
            Assert.Equal(lines, log.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        }
        finally
        {
            NamespaceLock.Release(task.Pid);
        }
    }

    [RootFact]
    public void Saving_a_dump_state_removes_the_states_of_dumps_whose_criu_is_gone()
    {
        int deadCriu = Enumerable.Range(4_000_000, 1000).First(pid => !Directory.Exists($"/proc/{pid}"));
        Directory.CreateDirectory(HookStateStore.RuntimeDirectory);
        string stale = Path.Combine(HookStateStore.RuntimeDirectory, $"dump-{deadCriu}-1.json");
        File.WriteAllText(stale, "{}");
        var context = new HookContext(new HookSettings(), new StringWriter(), Environment.ProcessId, null);
        string mine = HookStateStore.DumpStatePath(Environment.ProcessId, 424242);
        try
        {
            HookStateStore.SaveDumpState(context, 424242, FreezeManifest.Create(424242, TimeSpan.FromSeconds(5), [], []));
            Assert.False(File.Exists(stale), "a killed watcher's state was not cleaned up");
            Assert.True(File.Exists(mine));
        }
        finally
        {
            File.Delete(stale);
            File.Delete(mine);
        }
    }

    /// <summary>
    /// Issue 19, item 10: the resume kick goes only where a restored connection's peer is. A manifest
    /// edited in the images with a planted key and a recorded peer sequence number makes pre-resume send
    /// nothing to that key's address; a listed connection that exists (restored) is kicked.
    /// </summary>
    [RootFact]
    public void Pre_resume_kicks_only_connections_that_were_restored_never_a_key_planted_in_the_manifest()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        using var pair = TcpPair.Open(network.A, network.B, new IPEndPoint(network.AddressB(AddressFamily.InterNetwork), 7400));
        var planted = ConnectionKey.Parse($"{network.AddressB(AddressFamily.InterNetwork)}:7401 -> 198.18.254.9:40000");
        FreezerOptions options = pins.Options(network.B);
        var settings = new HookSettings { PinRoot = pins.Path, Lease = TimeSpan.FromSeconds(30) };
        try
        {
            foreach ((ConnectionKey[] keys, bool kicked) in new[] { (new[] { planted }, false), (new[] { pair.ServerView }, true) })
            {
                var log = new StringWriter();
                var context = new HookContext(settings, log, Environment.ProcessId, null);
                (FreezeManifest.Create(4242, TimeSpan.FromSeconds(30), keys, []) with
                {
                    PeerSequences = keys.ToDictionary(k => k.ToString(), _ => 12345u),
                }).Write(_work);
                int code = network.B.Run(() =>
                {
                    // What pre-restore froze (its live-socket check would refuse the real pair, which exists here already).
                    using (TcpFreezer freezer = TcpFreezer.Attach(options))
                        freezer.Freeze(keys, [], TimeSpan.FromSeconds(30), FreezeTiming.JustInTime);
                    return CriuHookDispatcher.CreateTcpFreeze().Dispatch(new CriuEnvironment(CriuAction.PreResume, "pre-resume", _work, 4242), context);
                });
                Assert.True(code == 0, log.ToString());
                if (kicked)
                    Assert.Contains("resume kick:", log.ToString());
                else
                    Assert.DoesNotContain("resume kick", log.ToString());
            }
        }
        finally
        {
            HookStateStore.TryRemove(HookStateStore.RestoreStatePath(Environment.ProcessId));
            TcpFreezer.Detach(options);
        }
    }

    public void Dispose() => Directory.Delete(_work, recursive: true);

    /// <summary>
    /// A connection between two test namespaces and a process in B standing for the root
    /// task of a tree with a network namespace of its own; the hook's steps run here, in
    /// another namespace, as CRIU's would.
    /// </summary>
    private sealed class TreeWithItsOwnNamespace : IDisposable
    {
        private readonly HookContext _context;
        private readonly CriuHookDispatcher _hook = CriuHookDispatcher.CreateTcpFreeze();

        public TreeWithItsOwnNamespace()
        {
            Network = TestNetwork.Create();
            Endpoint = new IPEndPoint(Network.AddressB(AddressFamily.InterNetwork), 7000);
            Pair = TcpPair.Open(Network.A, Network.B, Endpoint);
            Task = ScriptProcess.Start(Network.NameB, "import sys; print('up', flush=True); sys.stdin.read()");
            Task.Expect("up", TimeSpan.FromSeconds(10));
            _context = new HookContext(new HookSettings(), Log, Environment.ProcessId, null);
        }

        public TestNetwork Network { get; }
        public IPEndPoint Endpoint { get; }
        public TcpPair Pair { get; }
        public ScriptProcess Task { get; }
        public StringWriter Log { get; } = new();

        public int Step(CriuAction action, string name) => _hook.Dispatch(new CriuEnvironment(action, name, null, Task.Pid), _context);

        public void Dispose()
        {
            Task.Dispose();
            Pair.Dispose();
            Network.Dispose();
        }
    }
}
