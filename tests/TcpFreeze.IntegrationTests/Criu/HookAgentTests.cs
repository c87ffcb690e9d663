using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.Criu;

/// <summary>
/// The hook's front end (tcpfreeze-criu-hook, what CRIU runs) and the resident agent (the engine started with
/// --agent): steps go to the agent when one answers as root, in the front end's own PID and mount namespaces;
/// otherwise the front end becomes the engine. Real processes, a real CRIU migration through the agent.
/// </summary>
[Trait("Privileges", "root")]
public sealed class HookAgentTests(CriuFixture criu) : CriuTest("tcpfreeze-agent-")
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private string Engine => Path.Combine(Path.GetDirectoryName(criu.Hook)!, "tcpfreeze-criu-hook-engine");

    private string Socket => Path.Combine(_work, "agent.sock");

    /// <summary>The front end at a step that fails in the hook before it touches anything (no images folder at pre-dump).</summary>
    private (int ExitCode, string Output, string Error) FailingPreDump(string socket, IReadOnlyDictionary<string, string>? extra = null)
    {
        var environment = new Dictionary<string, string>
        {
            ["CRTOOLS_SCRIPT_ACTION"] = "pre-dump",
            ["CRTOOLS_INIT_PID"] = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["TCPFREEZE_HOOK_CONFIG"] = "",
            ["TCPFREEZE_AGENT_SOCKET"] = socket,
        };
        foreach ((string name, string value) in extra ?? new Dictionary<string, string>())
            environment[name] = value;
        return Run.Capture(criu.Hook, [], environment, Bound);
    }

    private const string PreDumpFailure = "tcpfreeze-hook: pre-dump failed: CRTOOLS_IMAGE_DIR is not set at pre-dump";

    [RootFact]
    public void The_agent_takes_a_step_and_the_front_end_gives_CRIU_its_exit_code_and_lines()
    {
        using var agent = AgentProcess.Start(Engine, Socket);
        (int code, _, string error) = FailingPreDump(Socket);
        Assert.Equal(1, code);
        Assert.Contains(PreDumpFailure, error);
        agent.WaitForLine("pre-dump for PID", Bound);

        (code, _, error) = Run.Capture(criu.Hook, [], new Dictionary<string, string>
        {
            ["CRTOOLS_SCRIPT_ACTION"] = "post-restore",
            ["TCPFREEZE_AGENT_SOCKET"] = Socket,
        }, Bound);
        Assert.True(code == 0 && error.Length == 0, $"post-restore (nothing to do) exited {code}: {error}");
        agent.WaitForLine("post-restore for PID", Bound);
    }

    [RootFact]
    public void Without_an_agent_the_front_end_becomes_the_engine_and_says_why_only_when_one_was_expected()
    {
        // No socket at all: the usual machine without an agent; not a word about it.
        (int code, _, string error) = FailingPreDump(Socket);
        Assert.Equal(1, code);
        Assert.Contains(PreDumpFailure, error);
        Assert.DoesNotContain("agent", error);

        // A socket an agent left when it was killed: nobody answers, one line says so, the engine does the step.
        // (.NET removes the file of a socket it closes; a process that ends at once does not.)
        Run.Checked("python3", "-c", $"import os, socket; socket.socket(socket.AF_UNIX).bind('{Socket}'); os._exit(0)");
        Assert.True(File.Exists(Socket), "no stale socket to test with");
        (code, _, error) = FailingPreDump(Socket);
        Assert.Equal(1, code);
        Assert.Contains(PreDumpFailure, error);
        Assert.Contains($"the agent at {Socket} did not answer", error);

        // A new agent replaces that stale socket, and a second agent on the same socket is refused by name.
        using var agent = AgentProcess.Start(Engine, Socket);
        (int second, _, string refusal) = Run.Capture(Engine, ["--agent", Socket], null, Bound);
        Assert.Equal(1, second);
        Assert.Contains("another agent answers there already", refusal);
        (code, _, error) = FailingPreDump(Socket);
        Assert.Equal(1, code);
        Assert.DoesNotContain("did not answer", error);
        agent.WaitForLine("pre-dump for PID", Bound);
    }

    [RootFact]
    public void A_front_end_in_another_network_namespace_is_not_served_and_runs_the_engine()
    {
        using var network = TestNetwork.Create();
        using var agent = AgentProcess.Start(Engine, Socket);
        (int code, _, string error) = Run.Capture("nsenter", [$"--net=/run/netns/{network.NameB}", criu.Hook], new Dictionary<string, string>
        {
            ["CRTOOLS_SCRIPT_ACTION"] = "pre-dump",
            ["CRTOOLS_INIT_PID"] = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["TCPFREEZE_HOOK_CONFIG"] = "",
            ["TCPFREEZE_AGENT_SOCKET"] = Socket,
        }, Bound);
        Assert.Equal(1, code);
        Assert.Contains("another network namespace than the agent", error);
        Assert.Contains(PreDumpFailure, error);
        Assert.DoesNotContain("pre-dump for PID", agent.Output);
    }

    [RootFact]
    public void A_front_end_in_another_PID_namespace_is_not_served_and_runs_the_engine()
    {
        using var agent = AgentProcess.Start(Engine, Socket);
        // CRTOOLS_INIT_PID would name another process in the agent's namespace: the agent must not take it.
        (int code, _, string error) = Run.Capture("unshare", ["--pid", "--fork", criu.Hook], new Dictionary<string, string>
        {
            ["CRTOOLS_SCRIPT_ACTION"] = "pre-dump",
            ["CRTOOLS_INIT_PID"] = "1",
            ["TCPFREEZE_HOOK_CONFIG"] = "",
            ["TCPFREEZE_AGENT_SOCKET"] = Socket,
        }, Bound);
        Assert.Equal(1, code);
        Assert.Contains("the agent did not take this step: the hook", error);
        Assert.Contains("another PID namespace than the agent", error);
        Assert.Contains(PreDumpFailure, error); // the engine's own answer
        Assert.DoesNotContain("pre-dump for PID", agent.Output);
    }

    [RootFact]
    public void The_request_carries_only_CRIUs_and_TcpFreezes_variables_and_an_agent_that_dies_unanswered_fails_the_step()
    {
        // A stand-in agent (root, as the front end requires) that reads the request and ends without an answer.
        using var listener = new System.Net.Sockets.Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(Socket));
        listener.Listen(1);
        var received = Task.Run(() =>
        {
            using System.Net.Sockets.Socket client = listener.Accept();
            var request = new MemoryStream();
            byte[] buffer = new byte[4096];
            for (int got; (got = client.Receive(buffer)) > 0;)
                request.Write(buffer, 0, got);
            return request.ToArray();
        });
        (int code, _, string error) = FailingPreDump(Socket, new Dictionary<string, string> { ["SECRET_TOKEN"] = "hunter2" });
        Assert.True(received.Wait(Bound), "the front end sent no request");

        Assert.Equal(1, code);
        Assert.Contains("ended without an answer", error);
        Assert.DoesNotContain(PreDumpFailure, error); // not run again by the engine: the agent may have done part of it

        string[] entries = Encoding.UTF8.GetString(received.Result).Split('\0');
        Assert.Equal("TFH1", entries[0]);
        Assert.Equal(["", ""], entries[^2..]);
        string[] variables = entries[1..^2];
        Assert.Contains("CRTOOLS_SCRIPT_ACTION=pre-dump", variables);
        Assert.Contains($"TCPFREEZE_AGENT_SOCKET={Socket}", variables);
        Assert.All(variables, v => Assert.True(v.StartsWith("CRTOOLS_", StringComparison.Ordinal) || v.StartsWith("TCPFREEZE_", StringComparison.Ordinal), v));
    }

    [RootFact]
    public async Task A_migration_through_the_agent_keeps_every_connection_and_the_agent_takes_every_step()
    {
        await using var busy = BusyEchoServer.Start(criu, _work, 100);
        // CRIU runs in namespace B (the tree's host namespace here): the agent serves the CRIU runs of its own namespaces.
        using var agent = AgentProcess.Start(Engine, Socket, busy.Network.NameB);
        busy.Runner.Environment["TCPFREEZE_AGENT_SOCKET"] = Socket;

        (int dumpCode, _, string dumpLog) = busy.Runner.Dump(busy.Server.Pid);
        Assert.True(dumpCode == 0, $"criu dump failed ({dumpCode}):\n{CriuRunner.Tail(dumpLog)}");
        Assert.True(dumpLog.Contains("tcpfreeze-hook: pre-dump: froze 100 connections", StringComparison.Ordinal), HookLines(dumpLog) + agent.Output);
        Assert.True(busy.Server.WaitUntilGone(TimeSpan.FromSeconds(10)), "the dumped server's PID did not go away");
        (int restoreCode, _, string restoreLog) = busy.Runner.Restore();
        Assert.True(restoreCode == 0, $"criu restore failed ({restoreCode}):\n{CriuRunner.Tail(restoreLog)}");
        Assert.True(restoreLog.Contains("tcpfreeze-hook: pre-resume: thawed 100 connections", StringComparison.Ordinal), HookLines(restoreLog) + agent.Output);

        busy.AssertEveryConnectionFlows(5, TimeSpan.FromSeconds(40), "after the restore");
        foreach (string step in new[] { "pre-dump", "post-dump", "pre-restore", "pre-resume", "post-resume" })
            agent.WaitForLine($"{step} for PID", Bound);
        // The dump watcher is started once CRIU has pre-dump's answer, off its clock.
        Assert.Contains("the agent starts the dump watcher", dumpLog);
        agent.WaitForLine($"pre-dump of PID {busy.Server.Pid}", Bound);
        Assert.Matches(@"pre-dump of PID \d+ \(CRIU \d+\): dump watcher PID \d+ thaws at once", agent.Output);
        // And the resume kick once CRIU has pre-resume's answer.
        Assert.Contains("the agent sends the resume kick once CRIU has this answer", restoreLog);
        agent.WaitForLine("pre-resume (CRIU ", Bound);
        // And the detach (keep-attached is off) once CRIU has post-resume's answer.
        Assert.Contains("the agent detaches once CRIU has this answer", restoreLog);
        agent.WaitForLine("post-resume (CRIU ", Bound);
        Assert.Contains("detached from", agent.Output);
        KernelState.AssertNothingLeft(busy.Network.B, busy.ServerSide);
    }

    [RootFact]
    public void An_interface_that_comes_up_while_a_restore_is_frozen_is_attached_by_the_agent_at_once()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B);
        // A second link into namespace B, down at the restore's pre-restore (as if it did not exist yet).
        string extra = $"tfx{Environment.ProcessId % 100000}";
        Run.Checked("ip", "-n", network.NameB, "link", "add", extra, "type", "veth", "peer", "name", extra + "p", "netns", network.NameA);
        using var agent = AgentProcess.Start(Engine, Socket, network.NameB);
        string images = Directory.CreateDirectory(Path.Combine(_work, "images")).FullName;
        var key = ConnectionKey.Parse($"{network.AddressB(System.Net.Sockets.AddressFamily.InterNetwork)}:8080 -> {network.AddressA(System.Net.Sockets.AddressFamily.InterNetwork)}:40000");
        TcpFreeze.CriuHooks.FreezeManifest.Create(4242, TimeSpan.FromSeconds(30), [key], []).Write(images);
        try
        {
            (int code, _, string error) = Run.Capture("nsenter", [$"--net=/run/netns/{network.NameB}", criu.Hook], new Dictionary<string, string>
            {
                ["CRTOOLS_SCRIPT_ACTION"] = "pre-restore",
                ["CRTOOLS_IMAGE_DIR"] = images,
                ["TCPFREEZE_HOOK_CONFIG"] = "",
                ["TCPFREEZE_PIN_ROOT"] = pins.Path,
                ["TCPFREEZE_LEASE_SECONDS"] = "30",
                ["TCPFREEZE_AGENT_SOCKET"] = Socket,
            }, Bound);
            Assert.True(code == 0, error);
            agent.WaitForLine("pre-restore for PID", Bound);
            Assert.False(AttachedTo(extra), "the extra link was attached before it came up");

            // During the copy it comes up: the agent attaches it while the key is frozen, before any step runs.
            Run.Checked("ip", "-n", network.NameB, "link", "set", extra, "up");
            agent.WaitForLine($"attached to {extra}, which came up while 1 entries under {pins.Path} were frozen", Bound);
            Assert.True(AttachedTo(extra), "the agent said it attached, but the link has no TcpFreeze program");
        }
        finally
        {
            foreach (string state in Directory.EnumerateFiles(TcpFreeze.CriuHooks.HookStateStore.RuntimeDirectory, $"restore-{Environment.ProcessId}.json"))
                File.Delete(state);
            TcpFreezer.Detach(options);
        }

        bool AttachedTo(string name) => network.B.Run(() =>
            TcpFreeze.Ebpf.Interop.Xdp.Query(TcpFreeze.Ebpf.Interop.NetworkInterfaceNames.GetIndex(name)).ProgramId != 0
            || TcpFreeze.Ebpf.Interop.Tc.Query(TcpFreeze.Ebpf.Interop.NetworkInterfaceNames.GetIndex(name), TcpFreeze.Ebpf.Interop.TcDirection.Ingress, TcpFreeze.BpfNames.TcHandle, TcpFreeze.BpfNames.TcPriority) != 0);
    }

    private static string HookLines(string log)
        => string.Join('\n', log.Split('\n').Where(l => l.Contains("tcpfreeze-hook:", StringComparison.Ordinal))) + "\n";

    [RootFact]
    public void The_agent_removes_its_socket_when_it_stops()
    {
        var agent = AgentProcess.Start(Engine, Socket);
        agent.Dispose(); // SIGTERM, and waits for the exit
        Assert.Equal(0, agent.ExitCode);
        Assert.False(File.Exists(Socket), "the stopped agent left its socket");
        Assert.Contains("stopped", agent.Output);
    }

    /// <summary>The engine as the agent, in a test's own folder; stopped with SIGTERM.</summary>
    private sealed class AgentProcess : IDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _output = new();

        private AgentProcess(Process process)
        {
            _process = process;
            process.ErrorDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
            process.OutputDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
            process.BeginErrorReadLine();
            process.BeginOutputReadLine();
        }

        public string Output
        {
            get
            {
                lock (_output)
                    return _output.ToString();
            }
        }

        public int ExitCode => _process.ExitCode;

        /// <summary>The agent in the test's namespaces, or in network namespace <paramref name="netns"/> (where CRIU runs).</summary>
        public static AgentProcess Start(string engine, string socket, string? netns = null)
        {
            var info = new ProcessStartInfo(netns is null ? engine : "nsenter") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            if (netns is not null)
            {
                info.ArgumentList.Add($"--net=/run/netns/{netns}");
                info.ArgumentList.Add(engine);
            }
            info.ArgumentList.Add("--agent");
            info.ArgumentList.Add(socket);
            var agent = new AgentProcess(Process.Start(info)!);
            agent.WaitForLine("takes CRIU's steps at", Bound);
            return agent;
        }

        public void WaitForLine(string text, TimeSpan within)
        {
            var clock = Stopwatch.StartNew();
            while (!Output.Contains(text, StringComparison.Ordinal))
            {
                Assert.True(clock.Elapsed < within && !_process.HasExited, $"the agent never said '{text}' (exited: {_process.HasExited}):\n{Output}");
                Thread.Sleep(20);
            }
        }

        public void Dispose()
        {
            if (!_process.HasExited)
            {
                Run.Capture("kill", "-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
                if (!_process.WaitForExit(TimeSpan.FromSeconds(10)))
                    _process.Kill();
            }
            _process.WaitForExit();
        }
    }
}
