using TcpFreeze.CriuHooks;
using System.Diagnostics;
using TcpFreeze.Tests.Infrastructure;
using Xunit.Abstractions;

namespace TcpFreeze.Tests.Criu;

/// <summary>
/// What clients see after a CRIU migration with a pause between the dump and the restore (an
/// image copy): their requests sent meanwhile were dropped and their retransmission timers
/// backed off. With the resume kick at pre-resume they are answered at once; without it, at
/// their next retransmission. See RESUME.md for the restored sockets' own 1 s timer.
/// </summary>
public sealed class ResumeAfterMigrationTests(CriuFixture criu, ITestOutputHelper output) : CriuTest("tcpfreeze-resume-")
{
    private const int Connections = 100;
    private static readonly TimeSpan CopyDelay = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Per connection: from the restore's end to the answer of the exchange the migration held (its request or its
    /// reply caught by the freeze), 0 when it came before `criu restore` returned (pre-resume's thaw, kick and replay
    /// run inside it). Issue 21's goal, 50 ms. Measured on this 2-core VM (2026-12-07, load 2-10 with another build
    /// beside, some runs with two or three CPU burners added): 0 ms in every run of every test below that meets it
    /// (the answers all came before the restore returned). The margin is for a loaded CI machine of this kind, where
    /// pre-resume alone took 15-29 ms.
    /// </summary>
    private static readonly TimeSpan HeldBound = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// Per connection: the exchange after the held one (the client's next request, sent 25 ms after the held answer):
    /// the connection must go on flowing, not just deliver the held bytes. Usually 0-62 ms after the restore's end. But
    /// in four CI runs of 2026-12-07 one case each (a different one each time, IPv4 and IPv6, one host and across hosts)
    /// had every connection's next exchange 0.68-1.0 s late, in lockstep. The namespaces' counters showed no
    /// retransmission and no PAWS drop: the stall was this process's client threads (RESUME.md), since eased by the
    /// integration tests' thread-pool floor.
    /// So the bound is 1.5 s: above that timer, below a client's backed-off retransmission after a freeze of seconds.
    /// The held exchange keeps its 50 ms bound.
    /// </summary>
    private static readonly TimeSpan FollowingBound = TimeSpan.FromMilliseconds(1500);

    [RootTheory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task After_a_migration_with_a_copy_pause_every_connection_answers_at_once_with_the_kick_and_after_its_back_off_without(bool kick)
    {
        await using var busy = BusyEchoServer.Start(criu, _work, Connections);
        busy.Runner.Environment["TCPFREEZE_KICK"] = kick ? "true" : "false";

        (string restoreLog, long restored, _) = MigrateWithCopyPause(busy, CopyDelay, out long dumped);

        (TimeSpan[] sorted, TimeSpan[] next, string summary) = HeldAndFollowing(busy.Load, dumped, restored, $"kick {(kick ? "on" : "off")}");
        output.WriteLine(summary);
        foreach (string line in restoreLog.Split('\n').Where(l => l.Contains("tcpfreeze-hook: pre-resume")))
            output.WriteLine(line);

        if (kick)
        {
            Assert.Contains("resume kick:", restoreLog);
            Assert.True(WithinGoal(sorted) && next[^1] <= FollowingBound, summary);
        }
        else
        {
            // Without the kick the lag is wherever each client's backed-off timer happens to fire
            // (0.36-0.63 s here with this pause, up to about the pause itself): measured, not bounded.
            Assert.DoesNotContain("resume kick:", restoreLog);
        }
        busy.AssertEveryConnectionFlows(5, TimeSpan.FromSeconds(40), "after the restore");
    }

    [RootFact]
    public async Task Across_two_hosts_with_a_copy_pause_the_restore_hosts_own_records_kick_every_connection_back_at_once()
    {
        using var hosts = BridgedHosts.Create();
        using var pins = new PinRoot();
        var endpoint = new System.Net.IPEndPoint(hosts.Service, 7000);
        using DumpableServer server = EchoServer.Start(hosts.HostA, _work, endpoint);
        await using ClientLoad load = ClientLoad.Echo(NetworkNamespace.Named(hosts.Client), endpoint, Connections, TimeSpan.FromMilliseconds(25));
        Assert.True(load.WaitForProgress(_ => 3, TimeSpan.FromSeconds(30)), string.Join("; ", load.Failures.Take(5)));
        var runner = new CriuRunner(criu.Criu, criu.Hook, hosts.HostA, _work, pins.Path);
        FreezerOptions hostA = pins.Options(NetworkNamespace.Named(hosts.HostA)), hostB = pins.Options(NetworkNamespace.Named(hosts.HostB));
        try
        {
            load.RecordExchangesFrom(Stopwatch.GetTimestamp());
            (int dumpCode, _, string dumpLog) = runner.Dump(server.Pid);
            long dumped = Stopwatch.GetTimestamp();
            Assert.True(dumpCode == 0, $"criu dump failed:\n{CriuRunner.Tail(dumpLog)}");
            Assert.True(server.WaitUntilGone(TimeSpan.FromSeconds(10)));
            hosts.RemoveServiceFromHostA();
            runner.ExtraScripts.Add(hosts.WriteAddressMoveScript(_work));
            Thread.Sleep(CopyDelay);

            (int restoreCode, _, string restoreLog) = runner.Restore(netns: hosts.HostB);
            long restored = Stopwatch.GetTimestamp();
            Assert.True(restoreCode == 0, $"criu restore on hostB failed:\n{CriuRunner.Tail(restoreLog)}");
            long[] atRestore = load.Snapshot();
            // What the kick and the replay work from: the peers' sequence numbers and segments the manifest carried, and
            // what hostB's own programs recorded of the clients' retransmissions since its pre-restore. A request that
            // reached hostA only after post-dump had written the manifest is not carried (RESUME.md): unless its client
            // retransmits between hostB's pre-restore and pre-resume, it waits for that client's own backed-off timer
            // (two CI runs: one and a few connections about 1 s late). Those are reported, not bounded.
            FreezeManifest manifest = FreezeManifest.Read(runner.Images);
            HashSet<ConnectionKey> carried = [.. manifest.PeerSequenceKeys().Keys, .. manifest.PeerSegmentKeys().Keys, .. manifest.LocalSegmentKeys().Keys];
            (int inManifest, TimeSpan[] sorted, TimeSpan[] next, string summary) = CarriedAndOthers(load, carried, dumped, restored, "across hosts, kick on");
            output.WriteLine(summary);
            foreach (string line in dumpLog.Split('\n').Where(l => l.Contains("tcpfreeze-hook: post-dump")).Concat(
                         restoreLog.Split('\n').Where(l => l.Contains("tcpfreeze-hook: pre-resume"))))
                output.WriteLine(line);
            Assert.Contains("resume kick:", restoreLog);
            Assert.True(inManifest > 0 && WithinGoal(sorted) && next[^1] <= FollowingBound, summary);
            Assert.True(load.WaitForProgress(id => atRestore[id] + 5, TimeSpan.FromSeconds(40)), string.Join("; ", load.Failures.Take(5)));
            Assert.Empty(load.Failures);
        }
        finally
        {
            TcpFreezer.Detach(hostA);
            TcpFreezer.Detach(hostB);
        }
    }

    /// <summary>
    /// Issue 21: the clients drop ICMP, so the kick cannot reach them, and the copy pause (8 s) is
    /// long enough that most clients do not retransmit between hostB's pre-restore and its
    /// pre-resume, so hostB's programs have no segment of their own to replay. The segments the
    /// dump host recorded travel in the manifest and hostB replays them: every connection the
    /// manifest carries answers within the held bound, not after its client's backed-off timer
    /// (seconds). A request that reached hostA after post-dump is not carried: reported, not bounded.
    /// </summary>
    [RootFact]
    public async Task Across_two_hosts_with_clients_that_drop_ICMP_the_segments_recorded_on_the_dump_host_bring_every_connection_back_at_once()
    {
        using var hosts = BridgedHosts.Create();
        using var pins = new PinRoot();
        TestNetwork.DropIcmpUnreachable(hosts.Client);
        var endpoint = new System.Net.IPEndPoint(hosts.Service, 7000);
        using DumpableServer server = EchoServer.Start(hosts.HostA, _work, endpoint);
        await using ClientLoad load = ClientLoad.Echo(NetworkNamespace.Named(hosts.Client), endpoint, Connections, TimeSpan.FromMilliseconds(25));
        Assert.True(load.WaitForProgress(_ => 3, TimeSpan.FromSeconds(30)), string.Join("; ", load.Failures.Take(5)));
        var runner = new CriuRunner(criu.Criu, criu.Hook, hosts.HostA, _work, pins.Path);
        FreezerOptions hostA = pins.Options(NetworkNamespace.Named(hosts.HostA)), hostB = pins.Options(NetworkNamespace.Named(hosts.HostB));
        try
        {
            load.RecordExchangesFrom(Stopwatch.GetTimestamp());
            (int dumpCode, _, string dumpLog) = runner.Dump(server.Pid);
            long dumped = Stopwatch.GetTimestamp();
            Assert.True(dumpCode == 0, $"criu dump failed:\n{CriuRunner.Tail(dumpLog)}");
            Assert.True(server.WaitUntilGone(TimeSpan.FromSeconds(10)));
            foreach (string line in dumpLog.Split('\n').Where(l => l.Contains("tcpfreeze-hook: post-dump")))
                output.WriteLine(line);
            FreezeManifest manifest = FreezeManifest.Read(runner.Images);
            Assert.True(manifest.PeerSegmentKeys().Count > 0, "post-dump recorded no peer segment in the manifest");
            hosts.RemoveServiceFromHostA();
            runner.ExtraScripts.Add(hosts.WriteAddressMoveScript(_work));
            Thread.Sleep(TimeSpan.FromSeconds(8));

            (int restoreCode, _, string restoreLog) = runner.Restore(netns: hosts.HostB);
            long restored = Stopwatch.GetTimestamp();
            Assert.True(restoreCode == 0, $"criu restore on hostB failed:\n{CriuRunner.Tail(restoreLog)}");
            long[] atRestore = load.Snapshot();
            // Bounded: the connections whose held segment the manifest carries. A request that reached hostA after
            // post-dump wrote the manifest is not carried (RESUME.md, "Not carried"); with no ICMP reaching its client it
            // waits for that client's backed-off timer unless the client retransmits between hostB's pre-restore and
            // pre-resume. Those are reported, not bounded.
            HashSet<ConnectionKey> carried = [.. manifest.PeerSegmentKeys().Keys, .. manifest.LocalSegmentKeys().Keys];
            (int inManifest, TimeSpan[] sorted, TimeSpan[] next, string summary) = CarriedAndOthers(load, carried, dumped, restored, "across hosts, clients drop ICMP");
            output.WriteLine($"{manifest.PeerSegmentKeys().Count} peer segments in the manifest; {summary}");
            foreach (string line in restoreLog.Split('\n').Where(l => l.Contains("tcpfreeze-hook: pre-resume")))
                output.WriteLine(line);
            Assert.Contains("peer segments replayed", restoreLog);
            // The dump is shorter than the clients' 25 ms pause, so most requests are dropped before post-dump (88 of 100
            // at the fewest in the sibling test's runs); half is the floor that tells a manifest that carried little.
            Assert.True(inManifest >= Connections / 2 && WithinGoal(sorted) && next[^1] <= FollowingBound, summary);
            Assert.True(load.WaitForProgress(id => atRestore[id] + 5, TimeSpan.FromSeconds(40)), string.Join("; ", load.Failures.Take(5)));
            Assert.Empty(load.Failures);
        }
        finally
        {
            TcpFreezer.Detach(hostA);
            TcpFreezer.Detach(hostB);
        }
    }

    /// <summary>
    /// Issue 21 across hosts, both directions at once, with clients that drop ICMP (no kick reaches them). Half the
    /// connections have their server's reply caught on its way out (the server is stopped while every client has a
    /// request in its socket, those connections are frozen, and the server answers into the freeze: kept in the dump
    /// host's tf_replay_local); the other half have a request in flight to the server when the dump freezes them (kept
    /// in tf_replay). Post-dump puts both kinds in the manifest (localSegments, peerSegments); hostB's programs record
    /// none of the replies (a socket CRIU restored resends them only on its fresh 1 s timer) and few of the requests,
    /// so pre-resume sends the manifest's: each reply to its client, each request into its restored socket. Each
    /// connection's lag is from the restore's end to the answer of the exchange the migration held (0 when it came
    /// before `criu restore` returned), bounded per connection in each direction; the load checks every reply is the
    /// next one expected, so nothing is delivered twice or out of order. A connection with neither a reply caught nor a
    /// request in the manifest (a request that reached hostA after post-dump wrote it) is reported, not bounded: only a
    /// retransmission reaching hostB before its pre-resume could speed it up (RESUME.md). The control run takes the local segments out
    /// of the manifest before the restore: the replies then wait for the restored sockets' own 1 s timer.
    /// </summary>
    [RootTheory]
    [InlineData(5, true, 4)]
    [InlineData(30, true, 4)]
    [InlineData(5, false, 4)]
    [InlineData(5, true, 6)]
    [InlineData(30, true, 6)]
    public async Task Across_two_hosts_replies_and_requests_the_freeze_caught_reach_clients_that_drop_ICMP_at_once(int copySeconds, bool localSegmentsInManifest, int ipVersion)
    {
        using var hosts = BridgedHosts.Create();
        using var pins = new PinRoot();
        TestNetwork.DropIcmpUnreachable(hosts.Client);
        var endpoint = new System.Net.IPEndPoint(
            hosts.ServiceOf(ipVersion == 6 ? System.Net.Sockets.AddressFamily.InterNetworkV6 : System.Net.Sockets.AddressFamily.InterNetwork), 7000);
        using DumpableServer server = EchoServer.Start(hosts.HostA, _work, endpoint);
        await using ClientLoad load = ClientLoad.Echo(NetworkNamespace.Named(hosts.Client), endpoint, Connections, TimeSpan.FromMilliseconds(25));
        Assert.True(load.WaitForProgress(_ => 3, TimeSpan.FromSeconds(30)), string.Join("; ", load.Failures.Take(5)));
        var runner = new CriuRunner(criu.Criu, criu.Hook, hosts.HostA, _work, pins.Path);
        runner.Environment["TCPFREEZE_LEASE_SECONDS"] = (copySeconds + 60).ToString(System.Globalization.CultureInfo.InvariantCulture);
        FreezerOptions hostA = pins.Options(NetworkNamespace.Named(hosts.HostA)), hostB = pins.Options(NetworkNamespace.Named(hosts.HostB));
        ConnectionKey[] replyCaught = load.Connections.Where(c => c.Id % 2 == 0).Select(ServerView).ToArray();
        try
        {
            CatchReplies(server.Pid, NetworkNamespace.Named(hosts.HostA), hostA, replyCaught);

            long dumpStarted = Stopwatch.GetTimestamp();
            load.RecordExchangesFrom(dumpStarted);
            (int dumpCode, _, string dumpLog) = runner.Dump(server.Pid);
            long dumped = Stopwatch.GetTimestamp();
            Assert.True(dumpCode == 0, $"criu dump failed:\n{CriuRunner.Tail(dumpLog)}");
            Assert.True(server.WaitUntilGone(TimeSpan.FromSeconds(10)));
            foreach (string line in dumpLog.Split('\n').Where(l => l.Contains("tcpfreeze-hook: post-dump")))
                output.WriteLine(line);
            // What the dump host's programs dropped of each connection, by client port.
            Dictionary<int, FrozenConnection> atDump = NetworkNamespace.Named(hosts.HostA).Run(() =>
            {
                using TcpFreezer freezer = TcpFreezer.Open(hostA);
                return freezer.ListConnections().ToDictionary(c => c.Key.Remote.Port);
            });
            FreezeManifest manifest = FreezeManifest.Read(runner.Images);
            Dictionary<ConnectionKey, PeerSegment> localSegments = manifest.LocalSegmentKeys(), peerSegments = manifest.PeerSegmentKeys();
            Assert.True(replyCaught.All(localSegments.ContainsKey),
                $"the manifest carries {replyCaught.Count(localSegments.ContainsKey)} of the {replyCaught.Length} replies the freeze caught");
            if (!localSegmentsInManifest)
                (manifest with { LocalSegments = null }).Write(runner.Images);
            hosts.RemoveServiceFromHostA();
            runner.ExtraScripts.Add(hosts.WriteAddressMoveScript(_work));
            Thread.Sleep(TimeSpan.FromSeconds(copySeconds));

            (int restoreCode, _, string restoreLog) = runner.Restore(netns: hosts.HostB);
            long restored = Stopwatch.GetTimestamp();
            Assert.True(restoreCode == 0, $"criu restore on hostB failed:\n{CriuRunner.Tail(restoreLog)}");
            long[] atRestore = load.Snapshot();
            foreach (string line in restoreLog.Split('\n').Where(l => l.Contains("tcpfreeze-hook: pre-resume")))
                output.WriteLine(line);

            // The exchange the migration held: the first one answered after the dump ended (the freeze held from
            // pre-dump to pre-resume, so none was answered in between).
            TimeSpan[] lag = HeldExchangeLags(load, dumped, restored);
            bool Caught(ClientLoad.Connection c) => atDump.TryGetValue(((System.Net.IPEndPoint)c.Socket.LocalEndPoint!).Port, out FrozenConnection? f)
                                                  && f.LocalDataSegmentsDropped > 0;
            // A request the dump host dropped means its client had its last reply (a caught segment of such a connection
            // is a retransmission of a reply the client already had, whose ACK it was delaying): the request is what was held.
            ClientLoad.Connection[] requests = load.Connections.Where(c => peerSegments.ContainsKey(ServerView(c))).ToArray();
            ClientLoad.Connection[] replies = load.Connections.Where(c => Caught(c) && !peerSegments.ContainsKey(ServerView(c))).ToArray();
            // Neither: no reply caught and no request in the manifest (e.g. a request that reached hostA after post-dump
            // wrote the manifest, before the address moved): only hostB's own records can speed those up. Reported.
            ClientLoad.Connection[] others = load.Connections.Where(c => !Caught(c) && !peerSegments.ContainsKey(ServerView(c))).ToArray();
            (TimeSpan[] replyLags, string replySummary) = Summarize($"{replies.Length} replies in flight to the clients", replies.Select(c => lag[c.Id]));
            (TimeSpan[] requestLags, string requestSummary) = Summarize($"{requests.Length} requests in flight to the server", requests.Select(c => lag[c.Id]));
            (_, string otherSummary) = Summarize($"{others.Length} with neither in the manifest", others.Select(c => lag[c.Id]));
            TimeSpan[] following = HeldExchangeLags(load, dumped, restored, following: true);
            (TimeSpan[] next, string nextSummary) = Summarize("the exchange after the held one, on those in the manifest",
                replies.Concat(requests).Select(c => following[c.Id]));
            string summary = $"across hosts, IPv{ipVersion}, {copySeconds} s copy, clients drop ICMP, manifest: {(localSegmentsInManifest ? localSegments.Count : 0)} local and " +
                             $"{peerSegments.Count} peer segments; {replySummary}; {requestSummary}; {otherSummary}; {nextSummary} ({FollowingParts(load, dumped)})";
            output.WriteLine(summary);

            Assert.Contains("peer segments replayed", restoreLog);
            Assert.True(replies.Length >= replyCaught.Length && requests.Length > 0, summary);
            ClientLoad.Connection[] caughtButUnkept = others.Where(c => replyCaught.Contains(ServerView(c))).ToArray();
            Assert.True(caughtButUnkept.Length == 0,
                $"{caughtButUnkept.Length} connections whose reply the freeze caught have neither a kept reply nor a request: {summary}");
            Assert.True(WithinGoal(requestLags), summary);
            if (localSegmentsInManifest)
            {
                Assert.Contains("local segments sent to their peers", restoreLog);
                Assert.True(WithinGoal(replyLags) && next[^1] <= FollowingBound, summary);
            }
            else
            {
                // hostB kept none of these replies itself: the restored sockets resend them on their own timer.
                Assert.DoesNotContain("local segments sent to their peers", restoreLog);
                Assert.True(replyLags[replyLags.Length / 2] >= TimeSpan.FromMilliseconds(500), summary);
            }
            Assert.True(load.WaitForProgress(id => atRestore[id] + 5, TimeSpan.FromSeconds(40)), string.Join("; ", load.Failures.Take(5)));
            Assert.Empty(load.Failures);
        }
        finally
        {
            TcpFreezer.Detach(hostA);
            TcpFreezer.Detach(hostB);
        }
    }

    /// <summary>
    /// Stops the server while every client has a request in its socket, freezes <paramref name="keys"/> and lets
    /// the server answer into the freeze: their replies are dropped on their way out (and kept by the egress program).
    /// </summary>
    private static void CatchReplies(int serverPid, NetworkNamespace serverNamespace, FreezerOptions options, ConnectionKey[] keys)
    {
        string pid = serverPid.ToString(System.Globalization.CultureInfo.InvariantCulture);
        Run.Checked("kill", "-STOP", pid);
        try
        {
            // Each client sends its next request 25 ms after an answer: all of them are in the stopped server's sockets by now.
            Thread.Sleep(300);
            serverNamespace.Run(() =>
            {
                using TcpFreezer freezer = TcpFreezer.Attach(options);
                freezer.Freeze(keys);
            });
        }
        finally
        {
            Run.Checked("kill", "-CONT", pid);
        }
        HashSet<ConnectionKey> wanted = [.. keys];
        var clock = Stopwatch.StartNew();
        int held = 0;
        while (clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            held = serverNamespace.Run(() =>
            {
                using TcpFreezer freezer = TcpFreezer.Open(options);
                return freezer.ListConnections().Count(c => wanted.Contains(c.Key) && c.LocalDataSegmentsDropped > 0);
            });
            if (held == keys.Length)
                return;
            Thread.Sleep(20);
        }
        Assert.Fail($"only {held} of {keys.Length} replies were caught by the freeze");
    }

    /// <summary>
    /// Each connection's lag, by id, from <paramref name="restored"/> to the answer of the first exchange answered
    /// after <paramref name="dumped"/> (zero when it came before the restore returned: pre-resume runs inside it).
    /// With <paramref name="following"/>, the exchange after that one instead (the client's next request, 25 ms after
    /// the held answer): the connection must go on flowing, not only deliver the bytes the freeze held.
    /// Needs <see cref="ClientLoad.RecordExchangesFrom"/> from before the dump.
    /// </summary>
    private static TimeSpan[] HeldExchangeLags(ClientLoad load, long dumped, long restored, bool following = false)
    {
        var lag = new TimeSpan?[load.Connections.Count];
        var clock = Stopwatch.StartNew();
        // Up to a minute: a connection the manifest carries nothing for (a request that reached the dump host after
        // post-dump) waits for its client's own backed-off timer, which after a 30 s copy can be 25 s away. Those are
        // reported, not bounded; the bounds the tests assert are on the returned lags.
        while (lag.Any(l => l is null) && clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            foreach (ClientLoad.Connection c in load.Connections)
                if (lag[c.Id] is null && c.FirstAnsweredAfter(dumped) is { } held
                    && (following ? c.FirstAnsweredAfter(held.Replied + 1) : held) is { } exchange)
                    lag[c.Id] = exchange.Replied <= restored ? TimeSpan.Zero : Stopwatch.GetElapsedTime(restored, exchange.Replied);
            Thread.Sleep(1);
        }
        Assert.True(lag.All(l => l is not null), $"{lag.Count(l => l is null)} connections had no answer within 60 s of the restore: {string.Join("; ", load.Failures.Take(5))}");
        return lag.Select(l => l!.Value).ToArray();
    }

    /// <summary>
    /// Issue 21 on one host: clients whose namespace drops ICMP destination-unreachable (a firewall, or a TCP
    /// without RFC 6069) never see the kick; the replay of their last dropped segment into the restored socket
    /// answers them. Measured before the replay: p99 1,372 ms after a 5 s copy, 22,912 ms after a 30 s copy.
    /// Connections whose unacknowledged data was the server's (a reply the freeze caught) are answered by the mirror.
    /// </summary>
    [RootTheory]
    [InlineData(5)]
    [InlineData(30)]
    public async Task On_one_host_clients_that_drop_ICMP_are_answered_at_once_after_a_copy_pause(int copySeconds)
    {
        await using var busy = BusyEchoServer.Start(criu, _work, Connections);
        busy.Runner.Environment["TCPFREEZE_LEASE_SECONDS"] = (copySeconds + 60).ToString(System.Globalization.CultureInfo.InvariantCulture);
        TestNetwork.DropIcmpUnreachable(busy.Network.NameA);

        // The connections whose server dropped data at the freeze (its answer, whose ACK the client retransmitted its
        // request for) depend on the mirror too, which its own test bounds strictly (below); here, as in the lapsed-lease
        // test, they are reported apart: in one CI run one of them of 100 came 961 ms late (RESUME.md, open).
        HashSet<int> serverDropped = [];
        (string restoreLog, long restored, _) = MigrateWithCopyPause(busy, TimeSpan.FromSeconds(copySeconds), out long dumped, () => serverDropped = busy.Network.B.Run(() =>
        {
            using TcpFreezer freezer = TcpFreezer.Open(busy.ServerSide);
            return freezer.ListConnections().Where(c => c.LocalDataSegmentsDropped > 0).Select(c => c.Key.Remote.Port).ToHashSet();
        }));

        bool Dropped(ClientLoad.Connection c) => serverDropped.Contains(((System.Net.IPEndPoint)c.Socket.LocalEndPoint!).Port);
        TimeSpan[] lags = HeldExchangeLags(busy.Load, dumped, restored);
        TimeSpan[] following = HeldExchangeLags(busy.Load, dumped, restored, following: true);
        ClientLoad.Connection[] bounded = busy.Load.Connections.Where(c => !Dropped(c)).ToArray();
        (TimeSpan[] sorted, string heldSummary) = Summarize($"one host, {copySeconds} s copy, clients drop ICMP, {bounded.Length} whose server dropped nothing",
            bounded.Select(c => lags[c.Id]));
        (_, string droppedSummary) = Summarize($"{busy.Load.Connections.Count - bounded.Length} whose server dropped data",
            busy.Load.Connections.Where(Dropped).Select(c => lags[c.Id]));
        (TimeSpan[] next, string nextSummary) = Summarize("the exchange after the held one, on the former", bounded.Select(c => following[c.Id]));
        string summary = $"{heldSummary}; {droppedSummary}; {nextSummary} ({FollowingParts(busy.Load, dumped)})";
        output.WriteLine(summary);
        foreach (string line in restoreLog.Split('\n').Where(l => l.Contains("tcpfreeze-hook: pre-resume")))
            output.WriteLine(line);
        Assert.Contains("peer segments replayed", restoreLog);
        Assert.True(bounded.Length > 0 && WithinGoal(sorted) && next[^1] <= FollowingBound, summary);
        busy.AssertEveryConnectionFlows(5, TimeSpan.FromSeconds(40), "after the restore");
    }

    /// <summary>
    /// Issue 21, the other direction, and the open finding's cause (RESUME.md): replies the freeze caught on their
    /// way out. The server is stopped while every client has a request in its socket, the connections are frozen, and
    /// the server answers them into the freeze: every reply is dropped on egress (and kept in tf_replay_local). CRIU
    /// restores them as sent, and a restored socket would resend them only on its fresh 1 s timer, which no ICMP can
    /// shorten (it has not backed off), and the clients drop ICMP anyway. Pre-resume sends each connection's kept reply
    /// to its client, so every client has it at once (before `criu restore` returns, in every run here), and the
    /// exchange after it flows too; without the mirror 0.6-1.0 s.
    /// </summary>
    /// <remarks>Both families. A CI run of IPv6 once waited 606 ms: that was the exchange after the held one (the
    /// old measure counted it when the held answer came before the restore's end), dropped by the client as old
    /// (PAWS) because the kept reply's timestamp was ahead of the restored socket's clock; the mirror now sets it back
    /// (RESUME.md, "The mirror"). The counters printed below show PAWSEstab when it happens.</remarks>
    [RootTheory]
    [InlineData(4)]
    [InlineData(6)]
    public async Task On_one_host_replies_the_freeze_caught_on_their_way_out_reach_clients_that_drop_ICMP_at_once(int ipVersion)
    {
        await using var busy = BusyEchoServer.Start(criu, _work, Connections,
            ipVersion == 4 ? System.Net.Sockets.AddressFamily.InterNetwork : System.Net.Sockets.AddressFamily.InterNetworkV6);
        TestNetwork.DropIcmpUnreachable(busy.Network.NameA);
        ConnectionKey[] keys = busy.Load.Connections
            .Select(ServerView).ToArray();
        string pid = busy.Server.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture);
        Run.Checked("kill", "-STOP", pid);
        try
        {
            // Each client sends its next request 25 ms after an answer: all of them are in the stopped server's sockets by now.
            Thread.Sleep(300);
            busy.Network.B.Run(() =>
            {
                using TcpFreezer freezer = TcpFreezer.Attach(busy.ServerSide);
                freezer.Freeze(keys);
            });
        }
        finally
        {
            Run.Checked("kill", "-CONT", pid);
        }
        var clock = Stopwatch.StartNew();
        int held = 0;
        while (clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            held = busy.Network.B.Run(() =>
            {
                using TcpFreezer freezer = TcpFreezer.Open(busy.ServerSide);
                return freezer.ListConnections().Count(c => c.LocalDataSegmentsDropped > 0);
            });
            if (held == Connections)
                break;
            Thread.Sleep(20);
        }
        Assert.True(held == Connections, $"only {held} of {Connections} replies were caught by the freeze");

        // What the two stacks counted and knew of each other across the migration, for a run that misses its bound.
        Dictionary<string, long> clientBefore = Counters(busy.Network.NameA), serverBefore = Counters(busy.Network.NameB);
        string serverNeighbours = "";
        long dumped = 0;
        busy.Load.RecordExchangesFrom(Stopwatch.GetTimestamp());
        (string restoreLog, long restored, long[] atRestore) = MigrateWithCopyPause(busy, CopyDelay, () =>
        {
            dumped = Stopwatch.GetTimestamp();
            serverNeighbours = Run.Capture("nsenter", $"--net=/run/netns/{busy.Network.NameB}", "ip", "neigh", "show").Output.Trim();
        });

        // Each reply the freeze caught, from the restore's end to its arrival (0 when it came before `criu restore` returned).
        (TimeSpan[] sorted, string summary) = Summarize($"IPv{ipVersion}, every reply caught on its way out, clients drop ICMP",
            HeldExchangeLags(busy.Load, dumped, restored));
        (TimeSpan[] next, string nextSummary) = Summarize("the exchange after it", HeldExchangeLags(busy.Load, dumped, restored, following: true));
        summary += $"; {nextSummary} ({FollowingParts(busy.Load, dumped)})";
        output.WriteLine(summary);
        // The measure this test used before 2026-12-07: the first answer after the restore's end, which is the next
        // exchange's (a 25 ms pause later, and the restored server's own work) when the reply came before it.
        output.WriteLine(ResumeLags(busy.Load, restored, atRestore, "first answer after the restore's end (the next exchange's when the held one came before)").Summary);
        output.WriteLine($"server's neighbours after the dump: {serverNeighbours.ReplaceLineEndings("; ")}");
        output.WriteLine($"client counters: {CounterDelta(clientBefore, Counters(busy.Network.NameA))}");
        output.WriteLine($"server counters: {CounterDelta(serverBefore, Counters(busy.Network.NameB))}");
        foreach (string line in restoreLog.Split('\n').Where(l => l.Contains("tcpfreeze-hook: pre-resume")))
            output.WriteLine(line);
        Assert.Contains("local segments sent to their peers", restoreLog);
        Assert.True(WithinGoal(sorted) && next[^1] <= FollowingBound, summary);
        busy.AssertEveryConnectionFlows(5, TimeSpan.FromSeconds(40), "after the restore");
    }

    /// <summary>
    /// Issue 19, item 5: a lease that ends during the image copy must not slow the resume of the connections that
    /// survive it. The in-flight requests of a migration whose freeze lapsed (7 s lease, 9 s copy) are answered after
    /// the restore within the same bound as those of one whose freeze held (60 s lease, the same copy): pre-restore
    /// freezes the keys again, and pre-resume's kick and replay use what post-dump recorded in the manifest (the dump's
    /// own records went with the expired entries). Without them the clients would answer at their next backed-off
    /// retransmission, about 12.6 s after the freeze, some 3 s after the restore.
    /// Both are bounded per connection by <see cref="HeldBound"/>. A connection whose request the server had answered
    /// just before the freeze had that reply dropped on its way out; CRIU restores it as sent, and the restored socket
    /// would retransmit it on its fresh 1 s timer, which neither the kick nor the replay of the client's segment (it
    /// draws only a duplicate ACK) shortens. In the held freeze pre-resume sends the reply the egress program kept to
    /// the client (the replay's mirror); in the lapsed one that record went with the expired entry, and the manifest's
    /// copy (localSegments) is sent instead. How many connections that hits depends on how busy the server was at the
    /// freeze (none to all 100 here); the output shows the connections whose server dropped data at the freeze apart.
    /// The lapse is timed to fall between two of the clients' backed-off retransmissions (at about 6.2 s and 12.6 s
    /// after the freeze): a retransmission that arrives while nothing is frozen finds no socket and is answered with a
    /// reset, which is what a lapse costs (RELIABILITY.md; measured with a 3 s lease and a 6 s copy: 100 of 100 reset).
    /// </summary>
    [RootFact]
    public async Task After_a_lease_that_lapsed_during_the_copy_in_flight_requests_resume_as_fast_as_after_a_held_freeze()
    {
        var copy = TimeSpan.FromSeconds(9);
        ResumeMeasurement held = await MigrateAndMeasure(leaseSeconds: 60, copy, "held freeze (lease 60 s, copy 9 s)");
        ResumeMeasurement lapsed = await MigrateAndMeasure(leaseSeconds: 7, copy, "lapsed freeze (lease 7 s, copy 9 s)");
        string both = $"{held.Summary}; {lapsed.Summary}";
        Assert.Contains("peer segments replayed", lapsed.RestoreLog);
        // Bounded per connection: the connections whose server dropped nothing, in both freezes: their requests are
        // what this test is about. Those whose server's reply the freeze caught depend on the mirror, which has strict
        // tests of its own (On_one_host_replies_..., Across_two_hosts_replies_...); here they are reported: in two CI
        // runs of 2026-12-07 one of them came about 975 ms late (the restored socket's timer), once in the held freeze
        // and once in the lapsed one, an open finding in RESUME.md.
        if (held.ServerDroppedNothing.Length > 0)
            Assert.True(WithinGoal(held.ServerDroppedNothing), both);
        if (lapsed.ServerDroppedNothing.Length > 0)
            Assert.True(WithinGoal(lapsed.ServerDroppedNothing), both);
        Assert.True(held.ServerDroppedNothing.Length + lapsed.ServerDroppedNothing.Length > 0, $"no connection to bound: {both}");
    }

    /// <summary>The namespace's SNMP and netstat counters (nstat, absolute, without touching its history).</summary>
    private static Dictionary<string, long> Counters(string ns)
    {
        (int code, string text, _) = Run.Capture("nsenter", $"--net=/run/netns/{ns}", "nstat", "-asz");
        var counters = new Dictionary<string, long>();
        if (code != 0)
            return counters;
        foreach (string line in text.Split('\n'))
        {
            string[] fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length >= 2 && !fields[0].StartsWith('#') && long.TryParse(fields[1], out long value))
                counters[fields[0]] = value;
        }
        return counters;
    }

    /// <summary>The TCP, IP and ICMP counters that changed, as "name +delta" (packet totals left out).</summary>
    private static string CounterDelta(Dictionary<string, long> before, Dictionary<string, long> after)
        => string.Join(", ", after
            .Where(a => a.Value != before.GetValueOrDefault(a.Key) && !a.Key.EndsWith("Pkts", StringComparison.Ordinal)
                        && !a.Key.EndsWith("Octets", StringComparison.Ordinal)
                        && !a.Key.EndsWith("Receives", StringComparison.Ordinal) && !a.Key.EndsWith("Requests", StringComparison.Ordinal)
                        && !a.Key.EndsWith("Delivers", StringComparison.Ordinal))
            .Select(a => $"{a.Key} +{a.Value - before.GetValueOrDefault(a.Key)}"));

    /// <summary>Every connection's resume lag, sorted, a summary and the restore's log.</summary>
    private sealed record ResumeMeasurement(TimeSpan[] All, TimeSpan[] ServerDroppedNothing, string Summary, string RestoreLog);

    /// <summary>One migration of a fresh echo server with <paramref name="leaseSeconds"/> and a copy pause, measured.</summary>
    private async Task<ResumeMeasurement> MigrateAndMeasure(int leaseSeconds, TimeSpan copy, string label)
    {
        string work = Directory.CreateTempSubdirectory("tcpfreeze-resume-lease-").FullName;
        try
        {
            await using var busy = BusyEchoServer.Start(criu, work, Connections);
            busy.Runner.Environment["TCPFREEZE_LEASE_SECONDS"] = leaseSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            // Read once the dump is done: the connections whose server side dropped data at the freeze (a reply, or a
            // retransmission of one the client had already had), by client port, to show them apart.
            HashSet<int> serverDropped = [];
            (string restoreLog, long restored, _) = MigrateWithCopyPause(busy, copy, out long dumped, () => serverDropped = busy.Network.B.Run(() =>
            {
                using TcpFreezer freezer = TcpFreezer.Open(busy.ServerSide);
                return freezer.ListConnections().Where(c => c.LocalDataSegmentsDropped > 0).Select(c => c.Key.Remote.Port).ToHashSet();
            }));
            if (leaseSeconds < copy.TotalSeconds)
                Assert.Contains("were no longer frozen: their lease ended", restoreLog);
            TimeSpan[] lags = HeldExchangeLags(busy.Load, dumped, restored);
            bool Dropped(ClientLoad.Connection c) => serverDropped.Contains(((System.Net.IPEndPoint)c.Socket.LocalEndPoint!).Port);
            (TimeSpan[] all, string summary) = Summarize(label, lags);
            (TimeSpan[] droppedNothing, string heldSummary) = Summarize($"{busy.Load.Connections.Count(c => !Dropped(c))} whose server dropped nothing",
                busy.Load.Connections.Where(c => !Dropped(c)).Select(c => lags[c.Id]));
            (_, string droppedSummary) = Summarize($"{busy.Load.Connections.Count(Dropped)} whose server dropped data",
                busy.Load.Connections.Where(Dropped).Select(c => lags[c.Id]));
            string line = $"{summary} ({heldSummary}; {droppedSummary})";
            output.WriteLine(line);
            foreach (string hookLine in restoreLog.Split('\n').Where(l => l.Contains("tcpfreeze-hook: pre-re")))
                output.WriteLine(hookLine);
            busy.AssertEveryConnectionFlows(5, TimeSpan.FromSeconds(40), $"after the restore ({label})");
            return new ResumeMeasurement(all, droppedNothing, line, restoreLog);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>Dumps the server, waits until its PID is gone and <paramref name="copy"/> has passed, restores it: the restore's log, its end (a Stopwatch timestamp) and each connection's replies then.</summary>
    private static (string RestoreLog, long Restored, long[] AtRestore) MigrateWithCopyPause(BusyEchoServer busy, TimeSpan copy, Action? afterDump = null)
        => MigrateWithCopyPause(busy, copy, out _, afterDump);

    /// <summary>As above; <paramref name="dumped"/> is the dump's end (exchanges are recorded from before the dump, for <see cref="HeldExchangeLags"/>).</summary>
    private static (string RestoreLog, long Restored, long[] AtRestore) MigrateWithCopyPause(BusyEchoServer busy, TimeSpan copy, out long dumped, Action? afterDump = null)
    {
        busy.Load.RecordExchangesFrom(Stopwatch.GetTimestamp());
        (int dumpCode, _, string dumpLog) = busy.Runner.Dump(busy.Server.Pid);
        dumped = Stopwatch.GetTimestamp();
        Assert.True(dumpCode == 0, $"criu dump failed:\n{CriuRunner.Tail(dumpLog)}");
        Assert.True(busy.Server.WaitUntilGone(TimeSpan.FromSeconds(10)), "the dumped server's PID did not go away");
        afterDump?.Invoke();
        Thread.Sleep(copy);
        (int restoreCode, _, string restoreLog) = busy.Runner.Restore();
        long restored = Stopwatch.GetTimestamp();
        Assert.True(restoreCode == 0, $"criu restore failed:\n{CriuRunner.Tail(restoreLog)}");
        return (restoreLog, restored, busy.Load.Snapshot());
    }

    /// <summary>Each connection's time from <paramref name="restored"/> to its first answer after it, sorted, and a one-line summary.</summary>
    private static (TimeSpan[] Sorted, string Summary) ResumeLags(ClientLoad load, long restored, long[] atRestore, string label)
        => Summarize(label, ResumeLagById(load, restored, atRestore, label));

    /// <summary>Each connection's time from <paramref name="restored"/> to its first answer after it, by connection id.</summary>
    private static TimeSpan[] ResumeLagById(ClientLoad load, long restored, long[] atRestore, string label)
    {
        int count = load.Connections.Count;
        var lag = new TimeSpan?[count];
        var clock = Stopwatch.StartNew();
        // Up to a minute: a connection the manifest carries nothing for (a request that reached the dump host after
        // post-dump) waits for its client's own backed-off timer, which after a 30 s copy can be 25 s away. Those are
        // reported, not bounded; the bounds the tests assert are on the returned lags.
        while (lag.Any(l => l is null) && clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            foreach (ClientLoad.Connection c in load.Connections)
                if (lag[c.Id] is null && Interlocked.Read(ref c.Replies) > atRestore[c.Id])
                    lag[c.Id] = Stopwatch.GetElapsedTime(restored);
            Thread.Sleep(1);
        }
        Assert.True(lag.All(l => l is not null), $"{label}: {lag.Count(l => l is null)} connections did not answer within 20 s of the restore: {string.Join("; ", load.Failures.Take(5))}");
        return lag.Select(l => l!.Value).ToArray();
    }

    /// <summary>A client connection as the server's side keys it (local: the server's end).</summary>
    private static ConnectionKey ServerView(ClientLoad.Connection c)
        => new((System.Net.IPEndPoint)c.Socket.RemoteEndPoint!, (System.Net.IPEndPoint)c.Socket.LocalEndPoint!);

    /// <summary>
    /// Across hosts: the held exchanges' lags of the connections whose segment or sequence number the manifest
    /// <paramref name="carried"/>, sorted, and of the exchange after it; the others (not carried, RESUME.md) only in
    /// the summary line.
    /// </summary>
    private static (int Carried, TimeSpan[] Held, TimeSpan[] Following, string Summary) CarriedAndOthers(ClientLoad load, HashSet<ConnectionKey> carried,
        long dumped, long restored, string label)
    {
        TimeSpan[] lag = HeldExchangeLags(load, dumped, restored);
        TimeSpan[] following = HeldExchangeLags(load, dumped, restored, following: true);
        ClientLoad.Connection[] inManifest = load.Connections.Where(c => carried.Contains(ServerView(c))).ToArray();
        ClientLoad.Connection[] others = load.Connections.Where(c => !carried.Contains(ServerView(c))).ToArray();
        (TimeSpan[] sorted, string heldSummary) = Summarize($"{label}, {inManifest.Length} the manifest carries", inManifest.Select(c => lag[c.Id]));
        (_, string otherSummary) = Summarize($"{others.Length} it does not", others.Select(c => lag[c.Id]));
        (TimeSpan[] next, string nextSummary) = Summarize("the exchange after the held one, on those the manifest carries", inManifest.Select(c => following[c.Id]));
        return (inManifest.Length, sorted, next, $"{heldSummary}; {otherSummary}; {nextSummary} ({FollowingParts(load, dumped)})");
    }

    /// <summary>The held exchanges' lags and the following ones', sorted, with one summary line.</summary>
    private static (TimeSpan[] Held, TimeSpan[] Following, string Summary) HeldAndFollowing(ClientLoad load, long dumped, long restored, string label)
    {
        (TimeSpan[] held, string heldSummary) = Summarize(label, HeldExchangeLags(load, dumped, restored));
        (TimeSpan[] following, string followingSummary) = Summarize("the exchange after it", HeldExchangeLags(load, dumped, restored, following: true));
        return (held, following, $"{heldSummary}; {followingSummary} ({FollowingParts(load, dumped)})");
    }

    /// <summary>
    /// Where the exchange after the held one spent its time, for a stall in lockstep (RESUME.md): the client's side
    /// (its request sent late after the held answer: this process's scheduling, thread pool or GC) against the
    /// network's and the server's (the answer late after the request), and the GC's pauses in this process since
    /// the exchanges were recorded.
    /// </summary>
    private static string FollowingParts(ClientLoad load, long dumped)
    {
        var sendDelays = new List<TimeSpan>();
        var responses = new List<TimeSpan>();
        foreach (ClientLoad.Connection c in load.Connections)
            if (c.FirstAnsweredAfter(dumped) is { } held && c.FirstAnsweredAfter(held.Replied + 1) is { } next)
            {
                sendDelays.Add(Stopwatch.GetElapsedTime(held.Replied, next.Sent));
                responses.Add(Stopwatch.GetElapsedTime(next.Sent, next.Replied));
            }
        static string Median(List<TimeSpan> values)
            => values.Count == 0 ? "none" : $"p50 {values.Order().ElementAt(values.Count / 2).TotalMilliseconds:F0} ms, max {values.Max().TotalMilliseconds:F0} ms";
        return $"its request sent after the held answer: {Median(sendDelays)}; answered after it was sent: {Median(responses)}; "
               + $"GC paused this process {load.GcPauseSinceRecording.TotalMilliseconds:F0} ms since the dump";
    }

    /// <summary>The nearest-rank 99th percentile of <paramref name="sorted"/> (with 100 values the 99th; with 50 or fewer, the largest).</summary>
    private static TimeSpan P99(TimeSpan[] sorted) => sorted[Math.Max(0, (int)Math.Ceiling(sorted.Length * 0.99) - 1)];

    /// <summary>
    /// Issue 21's goal for the held exchanges: p99 within <see cref="HeldBound"/>, and none waiting for a back-off
    /// (every one within <see cref="FollowingBound"/>). With 100 connections one may be late by the restored sockets'
    /// own 1 s timer, as seen once in about ten local runs of the lapsed-lease case; the summary prints the maximum.
    /// </summary>
    private static bool WithinGoal(TimeSpan[] sorted) => sorted.Length == 0 || (P99(sorted) <= HeldBound && sorted[^1] <= FollowingBound);

    /// <summary>Lags sorted, and a one-line summary.</summary>
    private static (TimeSpan[] Sorted, string Summary) Summarize(string label, IEnumerable<TimeSpan> lags)
    {
        TimeSpan[] sorted = lags.Order().ToArray();
        int count = sorted.Length;
        if (count == 0)
            return (sorted, $"{label}: none");
        return (sorted, $"{label}: resume lag p50 {sorted[count / 2].TotalMilliseconds:F0} ms, " +
                        $"p99 {P99(sorted).TotalMilliseconds:F0} ms, max {sorted[^1].TotalMilliseconds:F0} ms");
    }
}
