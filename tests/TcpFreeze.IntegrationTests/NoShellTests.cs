using System.Net.Sockets;
using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Criu;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>What every no-shell test checks in an strace of execve calls.</summary>
internal static class NoShell
{
    /// <summary>Text a shell would act on; none of it may reach the argv of anything the program runs.</summary>
    public static readonly string[] HostileFragments = [";reboot", "$(id)", "`id`", "$(reboot)"];

    public static readonly string[] Shells = ["sh", "bash", "dash", "zsh", "ksh", "busybox"];

    /// <summary>
    /// Nothing after the first execve (strace starting the program) may be a shell or
    /// carry hostile text; <paramref name="allowed"/> says which of the later ones are expected.
    /// </summary>
    public static void AssertRanOnly(TracedRun run, Func<ExecCall, bool> allowed)
    {
        foreach (ExecCall call in run.Ran)
        {
            Assert.False(Shells.Contains(Path.GetFileName(call.Path)) || call.Arguments.Take(1).Any(a => Shells.Contains(Path.GetFileName(a))),
                $"a shell was run: {call}\nin {run}");
            foreach (string argument in call.Arguments)
                Assert.False(HostileFragments.Any(argument.Contains), $"hostile input reached the argv of a program: {call}\nin {run}");
            Assert.True(allowed(call), $"an unexpected program was run: {call}\nin {run}");
        }
    }

    /// <summary>One stderr line at most, and no .NET stack trace.</summary>
    public static void AssertNoStackTrace(TracedRun run)
    {
        Assert.DoesNotContain("   at ", run.Error);
        Assert.DoesNotContain("Unhandled exception", run.Error);
    }
}

/// <summary>
/// The tcpfreeze command never runs a shell or any other program, whatever its
/// arguments: every command, with hostile-looking arguments valid and invalid, run
/// under strace (execve of the command and everything it starts).
/// </summary>
[Trait("Privileges", "root")]
public sealed class CliNoShellTests
{
    private static readonly string Assembly = Path.Combine(AppContext.BaseDirectory, "TcpFreeze.Cli.dll");

    private static string DotnetHost
        => Environment.ProcessPath is { } host && Path.GetFileName(host) == "dotnet" ? host : "dotnet";

    [RootFact]
    public void Every_command_with_hostile_arguments_runs_no_shell_and_no_other_program()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        string configDirectory = Directory.CreateTempSubdirectory("tcpfreeze-cfg-;reboot-$(id)-`id`-").FullName;
        string ns = $"/run/netns/{network.NameA}";
        string address = network.AddressA(AddressFamily.InterNetwork).ToString();
        using ScriptProcess task = SelfConnectedScript.Start(network.NameA, address, 8301);
        task.Expect("connected", TimeSpan.FromSeconds(20));
        string pid = task.Pid.ToString();
        string hostileHook = "/opt/tcpfreeze;reboot`id`$(id)/hook";
        string[] pinRoot = ["--pin-root", pins.Path];
        (int Code, string[] Arguments)[] runs =
        [
            (0, [.. pinRoot, "attach", "--netns", ns]),
            (1, [.. pinRoot, "attach", "--netns", ns, "--dev", "veth0;reboot"]),
            (2, [.. pinRoot, "freeze", "--netns", ns, "198.18.0.1:1;reboot", "198.18.0.2:80"]),
            (2, [.. pinRoot, "freeze", "--netns", ns, "$(id):80", "198.18.0.2:80"]),
            (2, [.. pinRoot, "freeze", "--netns", ns, "`id`", "198.18.0.2:80"]),
            (2, [.. pinRoot, "freeze", "--pid", "1;reboot"]),
            (2, [.. pinRoot, "freeze", "--netns", ns, "--endpoint", "$(reboot)"]),
            (0, [.. pinRoot, "freeze", "--pid", pid, "--lease", "60"]),
            (0, [.. pinRoot, "freeze", "--netns", ns, "--endpoint", $"{address}:8302"]),
            (0, [.. pinRoot, "list", "--netns", ns]),
            (0, [.. pinRoot, "list", "--json", "--netns", ns]),
            (0, [.. pinRoot, "stats", "--netns", ns]),
            (1, [.. pinRoot, "list", "--netns", "/run/netns/$(reboot)"]),
            (1, ["--pin-root", "/sys/fs/bpf/tcpfreeze-$(id);reboot", "list"]),
            (0, [.. pinRoot, "thaw", "--pid", pid]),
            (0, [.. pinRoot, "thaw", "--netns", ns, "--endpoint", $"{address}:8302"]),
            (0, [.. pinRoot, "thaw", "--netns", ns, "--all"]),
            (0, ["criu-config", "--config-dir", configDirectory, "--hook", hostileHook, "--write"]),
            (0, ["criu-config", "--config-dir", configDirectory, "--engine", "runc", "--hook", hostileHook]),
            (0, ["criu-config", "--config-dir", configDirectory, "--hook", hostileHook, "--remove"]),
            (0, [.. pinRoot, "detach", "--netns", ns]),
            (0, [.. pinRoot, "thaw", "--netns", ns, "--all"]),
        ];
        try
        {
            foreach ((int code, string[] arguments) in runs)
            {
                TracedRun run = ExecTrace.Run(DotnetHost, [Assembly, .. arguments]);
                Assert.True(run.ExitCode == code, $"expected exit {code}: {run}");
                NoShell.AssertNoStackTrace(run);
                // The hostile text reached the command as the very argv elements the test gave, no more, no less.
                Assert.Equal([Assembly, .. arguments], run.Started.Arguments.Skip(1));
                NoShell.AssertRanOnly(run, _ => false);
            }
            Assert.False(Directory.Exists("/sys/fs/bpf/tcpfreeze-$(id);reboot"), "a hostile pin root was created");
        }
        finally
        {
            TcpFreezer.Detach(pins.Options(network.A));
            Directory.Delete(configDirectory, recursive: true);
        }
    }
}

/// <summary>
/// The CRIU hook runs no shell either: at every step CRIU runs it for (host case and
/// a namespace of its own), with hostile text in CRIU's variables, the only programs it
/// starts are its own engine, dump and restore watchers and nft, each with a fixed argument list. Shares the
/// CRIU fixture for the published NativeAOT hook only; CRIU itself is not run.
/// </summary>
[Collection("criu")]
[Trait("Privileges", "root")]
public sealed class HookNoShellTests(CriuFixture fixture)
{
    private static readonly TimeSpan Up = TimeSpan.FromSeconds(20);

    [RootFact]
    public void Every_hook_step_runs_only_its_own_dump_watcher_and_nft_with_fixed_arguments()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        string imagesA = Directory.CreateTempSubdirectory("tcpfreeze-images-;reboot-$(id)-`id`-").FullName;
        string imagesB = Directory.CreateTempSubdirectory("tcpfreeze-images-;reboot-$(id)-`id`-").FullName;
        // A task in namespace A stands for a tree in the hook's own namespace (the hook runs there too);
        // a task in B for a tree with a namespace of its own (the hook runs in the test's namespace).
        using ScriptProcess inA = SelfConnectedScript.Start(network.NameA, network.AddressA(AddressFamily.InterNetwork).ToString(), 8401);
        using ScriptProcess inB = SelfConnectedScript.Start(network.NameB, network.AddressB(AddressFamily.InterNetwork).ToString(), 8402);
        inA.Expect("connected", Up);
        inB.Expect("connected", Up);
        string hook = new FileInfo(fixture.Hook).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(fixture.Hook);
        // The front end CRIU runs becomes the engine beside it (no agent here): that exec, and the engine's own.
        string engine = Path.Combine(Path.GetDirectoryName(hook)!, "tcpfreeze-criu-hook-engine");
        string[] inNamespaceA = ["nsenter", $"--net=/run/netns/{network.NameA}"];
        // The host case restores "on another host" (namespace B): in A the dumped task's sockets
        // still live (no CRIU killed it), and pre-restore refuses a manifest naming live sockets.
        string[] inNamespaceB = ["nsenter", $"--net=/run/netns/{network.NameB}"];
        try
        {
            foreach (string step in new[] { "pre-dump", "post-dump", "pre-restore", "pre-resume" })
            {
                if (step == "post-dump")
                {
                    // The watcher renews the lease only while a CRIU holds the tasks; strace holds none, and its
                    // 2 s wait for the watcher outlasts the lease: freeze again what pre-dump froze, or post-dump
                    // (rightly) fails the dump for a freeze that lapsed.
                    FreezeManifest dumped = FreezeManifest.Read(imagesA);
                    network.A.Run(() =>
                    {
                        using TcpFreezer freezer = TcpFreezer.Open(pins.Options(network.A));
                        return freezer.Freeze(dumped.ConnectionKeys(), dumped.EndpointKeys(), TimeSpan.FromMinutes(1), FreezeTiming.JustInTime);
                    });
                }
                TracedRun run = Hook(step, inA.Pid.ToString(), imagesA, pins.Path, step is "pre-restore" or "pre-resume" ? inNamespaceB : inNamespaceA);
                Assert.True(run.ExitCode == 0, run.ToString());
                AssertOnlyWatcherAndNft(run, hook, engine, pins.Path, inA.Pid, expectWatcher: step == "pre-dump", expectNft: false,
                    expectRestoreWatcher: step == "pre-restore");
                if (step == "pre-dump")
                    Assert.Contains("pre-dump: froze 2 connections and 1 listening endpoints", run.Error);
            }

            foreach (string step in new[] { "pre-dump", "network-lock", "post-dump", "network-unlock", "pre-restore", "setup-namespaces", "pre-resume", "network-unlock" })
            {
                TracedRun run = Hook(step, inB.Pid.ToString(), imagesB, pins.Path, launcher: null);
                Assert.True(run.ExitCode == 0, run.ToString());
                AssertOnlyWatcherAndNft(run, hook, engine, pins.Path, inB.Pid, expectWatcher: step == "pre-dump",
                    expectNft: step is "network-lock" or "network-unlock" or "setup-namespaces");
            }
            Assert.False(NamespaceLock.IsTaken(inB.Pid), "the namespace lock is still taken");

            // Hostile text where CRIU puts the PID: refused before anything runs.
            TracedRun refused = Hook("pre-dump", "1;reboot $(id)", imagesA, pins.Path, inNamespaceA);
            Assert.Equal(1, refused.ExitCode);
            NoShell.AssertNoStackTrace(refused);
            NoShell.AssertRanOnly(refused, c => c.Path == engine && c.Arguments.SequenceEqual([engine]));
        }
        finally
        {
            NamespaceLock.Release(inB.Pid);
            TcpFreezer.Detach(pins.Options(network.A));
            TcpFreezer.Detach(pins.Options(network.B));
            Directory.Delete(imagesA, recursive: true);
            Directory.Delete(imagesB, recursive: true);
        }
    }

    private TracedRun Hook(string step, string initPid, string images, string pinRoot, IReadOnlyList<string>? launcher)
        => ExecTrace.Run(fixture.Hook, [], new Dictionary<string, string>
        {
            ["CRTOOLS_SCRIPT_ACTION"] = step,
            ["CRTOOLS_IMAGE_DIR"] = images,
            ["CRTOOLS_INIT_PID"] = initPid,
            ["TCPFREEZE_PIN_ROOT"] = pinRoot,
            // The dump watcher outlives the step until the lease ends (strace, standing in for CRIU, waits for it).
            ["TCPFREEZE_LEASE_SECONDS"] = "2",
            ["TCPFREEZE_HOOK_CONFIG"] = "",
            ["TCPFREEZE_LOG_FILE"] = "",
            ["TCPFREEZE_AGENT_SOCKET"] = "", // the engine, even where an agent runs
        }, launcher);

    /// <summary>
    /// The front end becomes the engine beside it, with no arguments; the watcher is the engine with exactly
    /// --watch-dump INIT_PID CRIU_PID PIN_ROOT - detach-when-idle; the restore watcher (pre-restore) the front end with
    /// exactly --watch-restore CRIU_PID PIN_ROOT - LEASE_SECONDS; nft is /usr/sbin/nft (or wherever PATH has it)
    /// with exactly -f - (the ruleset goes on stdin).
    /// </summary>
    private static void AssertOnlyWatcherAndNft(TracedRun run, string hook, string engine, string pinRoot, int initPid, bool expectWatcher, bool expectNft,
        bool expectRestoreWatcher = false)
    {
        bool IsEngine(ExecCall c) => c.Path == engine && c.Arguments.SequenceEqual([engine]);
        bool IsWatcher(ExecCall c) => c.Path == engine && c.Arguments.Count == 7 && c.Arguments[0] == engine && c.Arguments[1] == DumpWatcher.Argument
                                       && c.Arguments[2] == initPid.ToString() && int.TryParse(c.Arguments[3], out _) && c.Arguments[4] == pinRoot
                                       && c.Arguments[5] == "-" && c.Arguments[6] == "detach-when-idle";
        // The front end waits for CRIU (here the tracer, which outlives it: it never becomes the engine).
        bool IsRestoreWatcher(ExecCall c) => c.Path == hook && c.Arguments.Count == 6 && c.Arguments[0] == hook && c.Arguments[1] == RestoreWatcher.Argument
                                              && int.TryParse(c.Arguments[2], out _) && c.Arguments[3] == pinRoot && c.Arguments[4] == "-" && c.Arguments[5] == "2";
        bool IsNft(ExecCall c) => Path.GetFileName(c.Path) == "nft" && c.Arguments.SequenceEqual([c.Path, "-f", "-"]);
        NoShell.AssertNoStackTrace(run);
        Assert.Equal(hook, Path.GetFullPath(new FileInfo(run.Started.Path).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? run.Started.Path));
        NoShell.AssertRanOnly(run, c => IsEngine(c) || (expectWatcher && IsWatcher(c)) || (expectRestoreWatcher && IsRestoreWatcher(c)) || (expectNft && IsNft(c)));
        Assert.Equal(1, run.Ran.Count(IsEngine));
        Assert.Equal(expectWatcher ? 1 : 0, run.Ran.Count(IsWatcher));
        Assert.Equal(expectRestoreWatcher ? 1 : 0, run.Ran.Count(IsRestoreWatcher));
        Assert.Equal(expectNft ? 1 : 0, run.Ran.Count(IsNft));
    }
}
