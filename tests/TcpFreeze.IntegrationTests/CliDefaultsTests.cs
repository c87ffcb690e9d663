using System.Text.Json;
using TcpFreeze.Ebpf.Interop;
using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Infrastructure;
using TcpFreeze.Native;

namespace TcpFreeze.Tests;

/// <summary>
/// The CLI's defaults and messages: nothing frozen for ever unless asked, options for what the
/// messages tell the user to change, and permission problems called by their name.
/// </summary>
[Trait("Privileges", "root")]
public sealed class CliDefaultsTests
{
    private static readonly string Cli = Path.Combine(AppContext.BaseDirectory, "TcpFreeze.Cli.dll");

    private static CliResult Command(TestNetwork network, PinRoot pins, params string[] arguments)
        => TcpFreezeCommand.Run(["--pin-root", pins.Path, "--netns", $"/run/netns/{network.NameB}", .. arguments]);

    private static double? LeaseOf(JsonElement list, string local)
    {
        JsonElement entry = list.GetProperty("connections").EnumerateArray().Single(c => c.GetProperty("local").GetString() == local);
        return entry.GetProperty("leaseSeconds").ValueKind == JsonValueKind.Null ? null : entry.GetProperty("leaseSeconds").GetDouble();
    }

    [RootFact]
    public void Freeze_without_a_lease_gets_the_hooks_default_and_lease_none_freezes_until_thaw()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        try
        {
            Command(network, pins, "attach").Succeeds();
            string output = Command(network, pins, "freeze", "198.18.0.1:8080", "198.18.0.2:40000").Succeeds().Output;
            Assert.Contains($"for {Lease.Default.TotalSeconds:0}s", output);
            Command(network, pins, "freeze", "198.18.0.1:8081", "198.18.0.2:40000", "--lease", "none").Succeeds();

            JsonElement list = Command(network, pins, "list", "--json").Succeeds().Json();
            Assert.InRange(LeaseOf(list, "198.18.0.1:8080")!.Value, Lease.Default.TotalSeconds - 30, Lease.Default.TotalSeconds);
            Assert.Null(LeaseOf(list, "198.18.0.1:8081"));
        }
        finally
        {
            TcpFreezer.Detach(pins.Options(network.B));
        }
    }

    [RootFact]
    public void Attach_with_a_capacity_makes_the_connections_map_that_large_and_says_when_an_existing_map_keeps_another()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        try
        {
            Command(network, pins, "attach", "--capacity", "8").Succeeds();
            Assert.Equal(8, Command(network, pins, "stats", "--json").Succeeds().Json().GetProperty("connectionCapacity").GetInt64());
            // The same capacity again is nothing to report; another one is not applied, and that is said (exit 1), not passed over.
            Command(network, pins, "attach", "--capacity", "8").Succeeds();
            CliResult other = Command(network, pins, "attach", "--capacity", "10");
            Assert.True(other.ExitCode == 1, other.ToString());
            Assert.Contains("--capacity 10 was not applied", other.Error);
            Assert.Contains("holds 8 connections at most", other.Error);
            Assert.Equal(8, Command(network, pins, "stats", "--json").Succeeds().Json().GetProperty("connectionCapacity").GetInt64());
        }
        finally
        {
            TcpFreezer.Detach(pins.Options(network.B));
        }
    }

    [RootTheory]
    [InlineData("list")]
    [InlineData("stats")]
    [InlineData("freeze", "198.18.0.1:8080", "198.18.0.2:40000")]
    [InlineData("thaw", "198.18.0.1:8080", "198.18.0.2:40000")]
    [InlineData("thaw", "--all")]
    [InlineData("detach")]
    public void An_unprivileged_user_is_told_permission_denied_when_pins_exist_not_that_nothing_is_attached(params string[] arguments)
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        try
        {
            Command(network, pins, "attach").Succeeds();
            // Root enters the namespace, then becomes nobody: the command works in namespace B as an unprivileged user.
            (int code, string output, string error) = Run.Capture("nsenter",
                [$"--net=/run/netns/{network.NameB}", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--",
                 "dotnet", Cli, "--pin-root", pins.Path, .. arguments],
                new Dictionary<string, string> { ["HOME"] = "/tmp", ["DOTNET_CLI_HOME"] = "/tmp" }, TimeSpan.FromSeconds(60));
            Assert.True(code == 1, $"exit {code}: {error} {output}");
            string line = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            // thaw --all sees TcpFreeze's attached programs through netlink and is refused opening them (EPERM);
            // the others are refused looking into the pin root (or into bpffs itself, when it is mounted with mode 0700).
            Assert.True(line.Contains("permission denied on /sys/fs/bpf") || line.Contains(": EPERM (Operation not permitted)"), line);
            Assert.Contains("run as root", line);
            Assert.DoesNotContain("nothing is attached", line);
            Assert.DoesNotContain("nothing is attached", output);
        }
        finally
        {
            TcpFreezer.Detach(pins.Options(network.B));
        }
    }

    [RootFact]
    public void Root_is_never_told_to_run_as_root()
    {
        Assert.DoesNotContain("run as root", Errnos.Hint(Errnos.EACCES));
        Assert.DoesNotContain("run as root", Errnos.Hint(Errnos.EPERM));
        Assert.Contains("this process is root", new NativeCallException("open network namespace /proc/1/ns/net", Errnos.EACCES).Message);
        Assert.DoesNotContain("run as root", ProcessSockets.PermissionDenied("/proc/1/fd", 1));
        // Whatever PID 1 allows here, the command's answer does not send root in circles.
        CliResult result = TcpFreezeCommand.Run("thaw", "--pid", "1", "--pin-root", $"/sys/fs/bpf/tcpfreeze-test-none-{Environment.ProcessId}");
        Assert.DoesNotContain("run as root", result.Error);
    }

    [RootFact]
    public void Detach_racing_attach_never_warns_about_an_empty_list_of_files()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        try
        {
            for (int round = 0; round < 6; round++)
            {
                Task<CliResult> attach = Task.Run(() => Command(network, pins, "attach"));
                Task<CliResult> detach = Task.Run(() => Command(network, pins, "detach"));
                Task.WaitAll(attach, detach);
                Assert.DoesNotContain("()", detach.Result.Error);
                if (detach.Result.Error.Contains("still holds files"))
                    Assert.Matches(@"\((\S+)(, \S+)*\)", detach.Result.Error);
            }
        }
        finally
        {
            TcpFreezer.Detach(pins.Options(network.B));
        }
    }
}
