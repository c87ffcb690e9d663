using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.Criu;

/// <summary>
/// Migrations off the happy path (issue 19's adversarial round): half-closed sockets, connections
/// waiting in an accept queue, another server on the same port, a second dump of one process, a
/// dump longer than the lease. Each is a real CRIU run with the published hook.
/// </summary>
public sealed class UnusualCheckpointTests(CriuFixture criu) : CriuTest("tcpfreeze-criu-unusual-")
{
    private DumpableServer StartServer(TestNetwork network, IPEndPoint endpoint, string name, params string[] extra)
    {
        string work = Directory.CreateDirectory(Path.Combine(_work, name)).FullName;
        // Connections whose peer shut down its sending side stay open until the file close-now exists.
        string script = EchoServer.Write(work);
        var server = DumpableServer.Start(network.NameB, work, ["python3", script, endpoint.Address.ToString(), endpoint.Port.ToString(),
            "--hold-half-closed", Path.Combine(work, "close-now"), .. extra]);
        Assert.True(SpinWait.SpinUntil(() => server.Log.Contains("listening"), TimeSpan.FromSeconds(10)), server.Log);
        return server;
    }

    private static int CountSockets(TestNetwork network, string state, int port)
        => Run.Checked("nsenter", $"--net=/run/netns/{network.NameB}", "ss", "-Htn", "state", state, "sport", "=", $":{port}")
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;

    private static void DumpThenWaitUntilGone(CriuRunner runner, DumpableServer server)
    {
        (int code, _, string log) = runner.Dump(server.Pid);
        Assert.True(code == 0, CriuRunner.Tail(log));
        Assert.True(server.WaitUntilGone(TimeSpan.FromSeconds(10)), "the dumped server's PID did not go away");
    }

    /// <summary>
    /// Issue 19, item 4. CRIU restores a socket that had received a FIN with a fake FIN it injects over
    /// loopback with its repair mark; the hook's freeze must let it through (loopback's TC ingress
    /// passes that mark), so the sockets come back CLOSE_WAIT, not ESTABLISHED, and close cleanly.
    /// </summary>
    [RootTheory]
    [InlineData(AddressFamily.InterNetwork)]
    [InlineData(AddressFamily.InterNetworkV6)]
    public void Half_closed_connections_come_back_in_close_wait_and_close_cleanly(AddressFamily family)
    {
        const int Count = 20;
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        var endpoint = new IPEndPoint(network.AddressB(family), 7000);
        using DumpableServer server = StartServer(network, endpoint, "server");
        var clients = new List<Socket>();
        try
        {
            for (int i = 0; i < Count; i++)
            {
                Socket client = TcpPair.NewClient(network.A, family);
                clients.Add(client);
                client.Connect(endpoint);
                TcpPair.AssertRoundTrip(client, client, "hello");
                client.Shutdown(SocketShutdown.Send);
            }
            Assert.True(SpinWait.SpinUntil(() => CountSockets(network, "close-wait", 7000) == Count, TimeSpan.FromSeconds(10)), "the server's sockets are not in CLOSE_WAIT");

            var runner = new CriuRunner(criu.Criu, criu.Hook, network.NameB, _work, pins.Path);
            DumpThenWaitUntilGone(runner, server);
            (int code, _, string log) = runner.Restore();
            Assert.True(code == 0, CriuRunner.Tail(log));

            Assert.Equal(Count, CountSockets(network, "close-wait", 7000));
            Assert.Equal(0, CountSockets(network, "established", 7000));
            File.WriteAllText(Path.Combine(_work, "server", "close-now"), "");
            foreach (Socket client in clients)
            {
                Assert.True(TcpPair.Readable(client, TimeSpan.FromSeconds(10)), "a client never heard its server close");
                Assert.Equal(0, client.Receive(new byte[16])); // the FIN: an orderly end, not a reset
            }
            Assert.True(SpinWait.SpinUntil(() => CountSockets(network, "fin-wait-2", 7000) == 0, TimeSpan.FromSeconds(10)), "server sockets linger in FIN_WAIT2");
        }
        finally
        {
            foreach (Socket client in clients)
                client.Dispose();
            TcpFreezer.Detach(pins.Options(network.B));
        }
    }

    /// <summary>
    /// Issue 19, item 3. A connection still in the accept queue when the server is dumped is not dumped
    /// (--skip-in-flight); when the dumped server dies, the kernel resets it, and that reset must reach
    /// the client (as with CRIU's iptables lock) instead of the client waiting for ever on a half-open connection.
    /// </summary>
    [RootFact]
    public void A_connection_waiting_in_the_accept_queue_at_the_dump_is_reset_at_once_not_left_hanging()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        var endpoint = new IPEndPoint(network.AddressB(AddressFamily.InterNetwork), 7000);
        string script = EchoServer.Write(_work);
        using DumpableServer server = DumpableServer.Start(network.NameB, _work, "python3", script, endpoint.Address.ToString(), "7000", "--no-accept");
        Assert.True(SpinWait.SpinUntil(() => server.Log.Contains("listening"), TimeSpan.FromSeconds(10)), server.Log);
        var queued = new List<Socket>();
        try
        {
            for (int i = 0; i < 5; i++)
            {
                Socket client = TcpPair.NewClient(network.A, AddressFamily.InterNetwork);
                queued.Add(client);
                client.Connect(endpoint);
                client.Send(Encoding.ASCII.GetBytes("GET / HTTP/1.0\r\n\r\n"));
            }
            var runner = new CriuRunner(criu.Criu, criu.Hook, network.NameB, _work, pins.Path);
            runner.ExtraDumpArguments.Add("--skip-in-flight");
            DumpThenWaitUntilGone(runner, server);

            foreach (Socket client in queued)
            {
                Assert.True(TcpPair.Readable(client, TimeSpan.FromSeconds(5)), "a queued client heard nothing after its server was dumped: left half-open");
                SocketException reset = Assert.Throws<SocketException>(() => client.Receive(new byte[16]));
                Assert.Equal(SocketError.ConnectionReset, reset.SocketErrorCode);
            }
            (int code, _, string log) = runner.Restore();
            Assert.True(code == 0, CriuRunner.Tail(log));
            using Socket again = TcpPair.NewClient(network.A, AddressFamily.InterNetwork);
            Assert.True(again.ConnectAsync(endpoint).Wait(TimeSpan.FromSeconds(10)), "the restored listener takes no connection");
        }
        finally
        {
            foreach (Socket client in queued)
                client.Dispose();
            TcpFreezer.Detach(pins.Options(network.B));
        }
    }

    /// <summary>
    /// Issue 19, item 7. An IPv6-only server dumped beside an unrelated IPv4 server on the same port:
    /// the IPv4 server's clients never notice the migration, and the dumped server comes back with
    /// every connection (before: its restore was refused, and the other server's clients got nothing
    /// for the whole copy).
    /// </summary>
    [RootFact]
    public async Task A_dump_never_holds_another_servers_connections_on_the_same_port_and_both_keep_every_connection()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        var six = new IPEndPoint(network.AddressB(AddressFamily.InterNetworkV6), 7000);
        var four = new IPEndPoint(network.AddressB(AddressFamily.InterNetwork), 7000);
        using DumpableServer dumped = StartServer(network, new IPEndPoint(IPAddress.IPv6Any, 7000), "dumped", "--v6only");
        using DumpableServer other = StartServer(network, new IPEndPoint(IPAddress.Any, 7000), "other");
        await using ClientLoad dumpedClients = ClientLoad.Echo(network.A, six, 20, TimeSpan.FromMilliseconds(25));
        await using ClientLoad otherClients = ClientLoad.Echo(network.A, four, 20, TimeSpan.FromMilliseconds(25));
        try
        {
            Assert.True(dumpedClients.WaitForProgress(_ => 3, TimeSpan.FromSeconds(20)), string.Join("; ", dumpedClients.Failures));
            Assert.True(otherClients.WaitForProgress(_ => 3, TimeSpan.FromSeconds(20)), string.Join("; ", otherClients.Failures));

            var runner = new CriuRunner(criu.Criu, criu.Hook, network.NameB, Directory.CreateDirectory(Path.Combine(_work, "criu")).FullName, pins.Path);
            DumpThenWaitUntilGone(runner, dumped);
            // The copy: the other server's clients carry on.
            long[] at = otherClients.Snapshot();
            Assert.True(otherClients.WaitForProgress(id => at[id] + 10, TimeSpan.FromSeconds(10)), "the other server's clients stalled during the copy");
            (int code, _, string log) = runner.Restore();
            Assert.True(code == 0, CriuRunner.Tail(log));

            long[] after = dumpedClients.Snapshot();
            Assert.True(dumpedClients.WaitForProgress(id => after[id] + 3, TimeSpan.FromSeconds(30)), "not every client of the dumped server flowed after the restore");
            Assert.Empty(dumpedClients.Failures);
            Assert.Empty(otherClients.Failures);
        }
        finally
        {
            TcpFreezer.Detach(pins.Options(network.B));
        }
    }

    /// <summary>A CRIU action script that sleeps <paramref name="seconds"/> at <paramref name="action"/> (CRIU then waits for it).</summary>
    private string SleepingScript(string action, double seconds)
    {
        string path = Path.Combine(_work, $"sleep-at-{action}.sh");
        File.WriteAllText(path, $"#!/bin/sh\n[ \"$CRTOOLS_SCRIPT_ACTION\" = {action} ] && sleep {seconds.ToString(System.Globalization.CultureInfo.InvariantCulture)}\nexit 0\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    /// <summary>
    /// Issue 19, item 8. A second `criu dump` of a process that another CRIU is dumping fails at its
    /// pre-dump, naming the other CRIU, and touches nothing of the first migration, which keeps every
    /// connection (before: the second dump's watcher took the first dump's sockets out of repair mode
    /// and thawed them, and the restored connections were reset).
    /// </summary>
    [RootFact]
    public async Task A_second_dump_of_a_process_being_dumped_fails_naming_the_other_and_the_first_migration_keeps_every_connection()
    {
        await using var busy = BusyEchoServer.Start(criu, _work, 40);
        busy.Runner.ExtraScripts.Add(SleepingScript("post-dump", 3)); // the first dump holds the tasks 3 s
        Task<(int ExitCode, TimeSpan Elapsed, string Log)> first = Task.Run(() => busy.Runner.Dump(busy.Server.Pid));
        Assert.True(SpinWait.SpinUntil(() => File.Exists(Path.Combine(busy.Runner.Images, TcpFreeze.CriuHooks.FreezeManifest.FileName)), TimeSpan.FromSeconds(20)),
            "the first dump's pre-dump did not run");
        Thread.Sleep(300);

        var second = new CriuRunner(criu.Criu, criu.Hook, busy.Network.NameB, Directory.CreateDirectory(Path.Combine(_work, "second")).FullName, busy.Pins.Path);
        (int secondCode, _, string secondLog) = second.Dump(busy.Server.Pid);
        Assert.NotEqual(0, secondCode);
        Assert.Contains("tcpfreeze-hook: pre-dump failed:", secondLog);
        Assert.Contains("is held (ptrace) by PID", secondLog);

        (int firstCode, _, string firstLog) = await first;
        Assert.True(firstCode == 0, CriuRunner.Tail(firstLog));
        Assert.True(busy.Server.WaitUntilGone(TimeSpan.FromSeconds(10)));
        (int code, _, string log) = busy.Runner.Restore();
        Assert.True(code == 0, CriuRunner.Tail(log));
        Assert.DoesNotContain("no longer frozen", log);
        busy.AssertEveryConnectionFlows(3, TimeSpan.FromSeconds(30), "after the first migration's restore");
    }

    /// <summary>
    /// Issue 19, item 8. A dump that takes longer than the lease (2 s lease, the dump held 5 s at
    /// post-dump, with every socket in repair mode) keeps its freeze: the dump watcher renews the lease
    /// while CRIU holds the tasks, post-dump finds everything still frozen, and every connection
    /// survives (before: the lease ended mid-dump, peers' segments were acknowledged by sockets CRIU
    /// had already read, and every connection hung after the restore).
    /// </summary>
    [RootFact]
    public async Task A_dump_longer_than_the_lease_keeps_its_freeze_and_every_connection()
    {
        await using var busy = BusyEchoServer.Start(criu, _work, 40);
        busy.Runner.Environment["TCPFREEZE_LEASE_SECONDS"] = "2";
        string hookLog = Path.Combine(_work, "hook.log");
        busy.Runner.Environment["TCPFREEZE_LOG_FILE"] = hookLog;
        busy.Runner.ExtraScripts.Add(SleepingScript("post-dump", 5));
        var clock = Stopwatch.StartNew();
        DumpThenWaitUntilGone(busy.Runner, busy.Server);
        Assert.True(clock.Elapsed > TimeSpan.FromSeconds(5), $"the dump took only {clock.Elapsed}");
        string watcherLog = File.Exists(hookLog) ? File.ReadAllText(hookLog) : "";
        Assert.True(watcherLog.Contains("CRIU still holds PID"), watcherLog);
        Assert.Contains("renewed the lease of 41 entries", watcherLog);
        (int code, _, string log) = busy.Runner.Restore();
        Assert.True(code == 0, CriuRunner.Tail(log));
        Assert.DoesNotContain("no longer frozen", log);
        busy.AssertEveryConnectionFlows(3, TimeSpan.FromSeconds(30), "after a dump longer than the lease");
    }
}
