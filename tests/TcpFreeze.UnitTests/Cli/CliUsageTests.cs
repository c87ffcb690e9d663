using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>Command-line mistakes are usage errors (exit 2, one line) and never reach the kernel.</summary>
public class CliUsageTests
{
    [Theory]
    [InlineData("has no port", "freeze", "198.18.0.1", "198.18.0.2:80")]
    [InlineData("is not an IPv4 address", "freeze", "198.18.0.300:80", "198.18.0.2:80")]
    [InlineData("port 0", "freeze", "198.18.0.1:0", "198.18.0.2:80")]
    [InlineData("port 0", "thaw", "198.18.0.1:80", "198.18.0.2:0")]
    [InlineData("mix IPv4 and IPv6", "freeze", "198.18.0.1:80", "[2001:db8::2]:80")]
    [InlineData("out of range", "freeze", "198.18.0.1:65536", "198.18.0.2:80")]
    [InlineData("is not a port number", "freeze", "198.18.0.1:99999999", "198.18.0.2:80")]
    [InlineData("without brackets", "freeze", "--endpoint", "2001:db8::1:80")]
    [InlineData("unrecognized command or argument 'frobnicate'", "frobnicate")]
    [InlineData("no command given")]
    [InlineData("REMOTE is missing", "freeze", "198.18.0.1:80")]
    [InlineData("say what to freeze", "freeze", "--lease", "5")]
    [InlineData("say what to thaw", "thaw")]
    [InlineData("is not a process id", "freeze", "--pid", "0")]
    [InlineData("is not a process id", "thaw", "--pid", "abc")]
    [InlineData("do not combine it with --netns", "freeze", "--pid", "1", "--netns", "/run/netns/none")]
    [InlineData("do not combine it with LOCAL REMOTE", "thaw", "--pid", "1", "--endpoint", "198.18.0.1:80")]
    [InlineData("thaws everything", "thaw", "--all", "198.18.0.1:80", "198.18.0.2:80")]
    [InlineData("--lease: '-3' is too short: a lease must be at least 0.001 s, or 'none'", "freeze", "--lease", "-3", "198.18.0.1:80", "198.18.0.2:80")]
    [InlineData("--lease: '1e9' is too long: a lease must be at most 86,400 s (a day), or 'none'", "freeze", "--lease", "1e9", "198.18.0.1:80", "198.18.0.2:80")]
    [InlineData("--lease: '0.0000001' is too short: a lease must be at least 0.001 s", "freeze", "--lease", "0.0000001", "198.18.0.1:80", "198.18.0.2:80")]
    [InlineData("--lease: 'forever' is not a number of seconds; a lease is a number of seconds from 0.001 to 86400, or 'none'", "freeze", "--lease", "forever", "198.18.0.1:80", "198.18.0.2:80")]
    [InlineData("--wait: '-1' is not a number of seconds", "--wait", "-1", "list")]
    [InlineData("--wait: 7200 s is too long", "--wait", "7200", "list")]
    [InlineData("is not a mode", "attach", "--xdp-mode", "turbo")]
    [InlineData("--ingress: 'ebpf' is not an ingress hook; use xdp or tc", "attach", "--ingress", "ebpf")]
    [InlineData("--ingress: 'XDP' is not an ingress hook; use xdp or tc", "attach", "--ingress", "XDP")]
    [InlineData("--xdp-mode applies to --ingress xdp", "attach", "--ingress", "tc", "--xdp-mode", "native")]
    public void Usage_error_exits_2_with_one_line(string messagePart, params string[] arguments)
    {
        TcpFreezeCommand.Run(arguments).FailsWith(2, messagePart);
    }

    [Fact]
    public void Help_as_a_word_is_the_same_as_the_help_option_and_a_bare_call_names_every_command()
    {
        Assert.Equal(TcpFreezeCommand.Run("--help").Succeeds().Output, TcpFreezeCommand.Run("help").Succeeds().Output);
        Assert.Equal(TcpFreezeCommand.Run("freeze", "--help").Succeeds().Output, TcpFreezeCommand.Run("help", "freeze").Succeeds().Output);
        CliResult bare = TcpFreezeCommand.Run().FailsWith(2, "no command given");
        foreach (string command in new[] { "attach", "detach", "gc", "freeze", "thaw", "list", "stats", "criu-config" })
            Assert.Contains(command, bare.Error);
    }

    [Fact]
    public void Help_names_the_command_and_exits_0()
    {
        CliResult result = TcpFreezeCommand.Run("freeze", "--help").Succeeds();
        Assert.Contains("tcpfreeze freeze", result.Output);
        Assert.Contains("--pid", result.Output);
    }

    [Fact]
    public void Attach_help_says_tc_ingress_coexists_and_replace_replaces()
    {
        string help = TcpFreezeCommand.Run("attach", "--help").Succeeds().Output;
        Assert.Contains("--ingress <xdp|tc>", help);
        Assert.Contains("coexists with another XDP program", help);
        Assert.Contains("--replace", help);
    }

    [Fact]
    public void Freeze_help_says_the_ipv6_any_address_endpoint_stands_for_both_families()
    {
        // The behaviour: CliServiceStopTests.Freezing_the_any_address_endpoint_of_a_dual_stack_listener_holds_ipv4_and_ipv6_clients_alike.
        string help = System.Text.RegularExpressions.Regex.Replace(TcpFreezeCommand.Run("freeze", "--help").Succeeds().Output, @"\s+", " ");
        Assert.Contains("[::]:PORT means any address of either family, as a dual-stack listener on [::] accepts both (it freezes 0.0.0.0:PORT too)", help);
        Assert.DoesNotContain("0.0.0.0 or [::] means any address", help);
    }

    [Fact]
    public void Detach_help_offers_if_idle_and_the_hook_settings_pin_root()
    {
        string help = System.Text.RegularExpressions.Regex.Replace(TcpFreezeCommand.Run("detach", "--help").Succeeds().Output, @"\s+", " ");
        Assert.Contains("--if-idle", help);
        Assert.Contains("Detach only when nothing is frozen", help);
        Assert.Contains("--hook-settings <FILE>", help);
    }

    [Fact]
    public void A_hook_settings_file_others_can_write_is_refused_before_the_kernel_is_touched()
    {
        using var folder = new TempDirectory();
        string path = folder.Write("criu-hook.conf", "pin-root = /sys/fs/bpf/tfin-unused\n");
        File.SetUnixFileMode(path, (UnixFileMode)0b110_110_110);
        TcpFreezeCommand.Run("--hook-settings", path, "detach", "--if-idle").FailsWith(1, $"the hook settings file {path} is writable by every user");
    }

    [Fact]
    public void Nonexistent_pid_is_an_operational_failure()
    {
        TcpFreezeCommand.Run("freeze", "--pid", int.MaxValue.ToString()).FailsWith(1, $"no process has PID {int.MaxValue}");
    }

    [Fact]
    public void Nothing_attached_is_an_operational_failure_that_says_what_to_do()
    {
        string root = Path.Combine(Path.GetTempPath(), $"tcpfreeze-none-{Guid.NewGuid():N}");
        TcpFreezeCommand.Run("list", "--pin-root", root).FailsWith(1, "run 'tcpfreeze attach' first");
        Assert.False(Directory.Exists(root));
    }
}
