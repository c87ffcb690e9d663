using System.Net;
using System.Net.Sockets;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// What an operator meets on a real machine: the Prometheus output checked by promtool, namespace
/// names, a missing libbpf, a pin folder off bpffs, an unprivileged attach. Each one says what is
/// wrong and what to do, and leaves nothing behind.
/// </summary>
[Trait("Privileges", "root")]
public sealed class OperatorErrorTests
{
    private static readonly string Cli = Path.Combine(AppContext.BaseDirectory, "TcpFreeze.Cli.dll");

    /// <summary>promtool: setup.sh puts it in $TCPFREEZE_BIN (from Debian's prometheus package); PATH and /usr/bin also do.</summary>
    private static string Promtool()
    {
        string? bin = Environment.GetEnvironmentVariable("TCPFREEZE_BIN");
        string[] candidates = [.. bin is null ? [] : new[] { Path.Combine(bin, "promtool") }, "/var/cache/tcpfreeze/bin/promtool", "/usr/bin/promtool",
            .. (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Select(d => Path.Combine(d, "promtool"))];
        return candidates.FirstOrDefault(File.Exists)
               ?? throw new InvalidOperationException("promtool is missing: run 'bash scripts/setup.sh' (it extracts promtool from Debian's prometheus package)");
    }

    private static void AssertPromtoolAccepts(string exposition)
    {
        string file = Path.Combine(Path.GetTempPath(), $"tcpfreeze-test-{Environment.ProcessId}-{Guid.NewGuid():N}.prom");
        File.WriteAllText(file, exposition);
        try
        {
            // promtool check metrics reads stdin; a shell would be needed for '<', so give it the file's content through sh -c "exec ... < FILE".
            (int code, string output, string error) = Run.Capture("sh", ["-c", "exec \"$0\" check metrics < \"$1\"", Promtool(), file], null, TimeSpan.FromSeconds(60));
            Assert.True(code == 0 && error.Trim().Length == 0 && output.Trim().Length == 0, $"promtool exit {code}: {output} {error}\n{exposition}");
        }
        finally
        {
            File.Delete(file);
        }
    }

    [RootFact]
    public void Stats_in_prometheus_format_passes_promtool_and_counts_what_a_freeze_dropped()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        using var pair = TcpPair.Open(network.A, network.B, new IPEndPoint(network.AddressB(AddressFamily.InterNetwork), 8080));
        FreezerOptions options = pins.Options(network.B);
        string[] stats = ["--pin-root", pins.Path, "--netns", network.NameB, "stats", "--format", "prometheus"];
        try
        {
            // Nothing attached yet: a sample that says so, exit 0, so a scrape tells it from a broken exporter.
            CliResult idle = TcpFreezeCommand.Run(stats).Succeeds();
            Assert.Contains($"tcpfreeze_attached{{pin_directory=\"{TcpFreezer.GetPinDirectory(options)}\"}} 0\n", idle.Output);
            AssertPromtoolAccepts(idle.Output);

            using TcpFreezer freezer = TcpFreezer.Attach(options);
            freezer.Freeze([pair.ServerView]);
            pair.Client.Send("dropped"u8);
            var waited = System.Diagnostics.Stopwatch.StartNew();
            while (freezer.GetStatistics().DroppedIngress == 0 && waited.Elapsed < TimeSpan.FromSeconds(10))
                Thread.Sleep(20);

            CliResult frozen = TcpFreezeCommand.Run(stats).Succeeds();
            AssertPromtoolAccepts(frozen.Output);
            string label = $"pin_directory=\"{freezer.PinDirectory}\"";
            Assert.Contains($"tcpfreeze_attached{{{label}}} 1\n", frozen.Output);
            Assert.Contains($"tcpfreeze_frozen_connections{{{label}}} 1\n", frozen.Output);
            Assert.Contains("# TYPE tcpfreeze_packets_dropped_total counter\n", frozen.Output);
            // The direction label takes the Meter's network.io.direction words (docs/cli-json.md): receive and transmit.
            string received = frozen.Output.Split('\n').Single(l => l.StartsWith($"tcpfreeze_packets_dropped_total{{{label},direction=\"receive\"}} ", StringComparison.Ordinal));
            Assert.True(ulong.Parse(received.Split(' ')[1]) > 0, received);
            Assert.Single(frozen.Output.Split('\n'), l => l.StartsWith($"tcpfreeze_packets_dropped_total{{{label},direction=\"transmit\"}} ", StringComparison.Ordinal));
            Assert.DoesNotContain("ingress", frozen.Output);
            Assert.DoesNotContain("egress", frozen.Output);
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }

    [RootFact]
    public void Netns_takes_the_name_ip_netns_gives()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        try
        {
            TcpFreezeCommand.Run("--pin-root", pins.Path, "--netns", network.NameB, "attach").Succeeds();
            Assert.True(TcpFreezer.IsAttached(pins.Options(network.B)));
            Assert.Contains("nothing is frozen", TcpFreezeCommand.Run("--pin-root", pins.Path, "--netns", network.NameB, "list").Succeeds().Output);
            TcpFreezeCommand.Run("--pin-root", pins.Path, "--netns", $"tcpfreeze-test-no-such-{Environment.ProcessId}", "list")
                .FailsWith(1, $"/run/netns/tcpfreeze-test-no-such-{Environment.ProcessId} does not exist");
        }
        finally
        {
            TcpFreezer.Detach(pins.Options(network.B));
        }
    }

    [RootFact]
    public void A_second_freeze_says_lease_replaced_only_when_there_is_a_lease()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        string[] freeze = ["--pin-root", pins.Path, "--netns", network.NameB, "freeze", "--endpoint", "198.18.0.1:80"];
        try
        {
            TcpFreezeCommand.Run("--pin-root", pins.Path, "--netns", network.NameB, "attach").Succeeds();
            TcpFreezeCommand.Run([.. freeze, "--lease", "none"]).Succeeds();
            CliResult again = TcpFreezeCommand.Run([.. freeze, "--lease", "none"]).Succeeds();
            Assert.Contains("1 was already frozen and stays frozen until thawed", again.Output);
            Assert.DoesNotContain("lease", again.Output);
            CliResult leased = TcpFreezeCommand.Run([.. freeze, "--lease", "30"]).Succeeds();
            Assert.Contains("for 30s; 1 was already frozen, now with this lease", leased.Output);
        }
        finally
        {
            TcpFreezer.Detach(pins.Options(network.B));
        }
    }

    [RootFact]
    public void A_pin_root_off_bpffs_is_pointed_to_a_folder_under_bpffs_not_told_to_mount_over_it()
    {
        using var folder = new TempDirectory();
        string pinRoot = Path.Combine(folder.Path, "pins");
        using var network = TestNetwork.Create();
        CliResult result = TcpFreezeCommand.Run("--pin-root", pinRoot, "--netns", network.NameB, "attach");
        result.FailsWith(1, $"is not on a bpf filesystem; choose a folder under a bpffs mount, e.g. /sys/fs/bpf/pins");
        Assert.DoesNotContain("mount -t bpf", result.Error);
        Assert.False(Directory.Exists(pinRoot));
    }

    [RootFact]
    public void Without_libbpf_the_command_says_to_install_it()
    {
        using var network = TestNetwork.Create();
        string pinRoot = $"/sys/fs/bpf/tcpfreeze-test-nolibbpf-{Environment.ProcessId}";
        // A private mount namespace where libbpf.so.1 is an empty file: the loader refuses it as it would a missing one.
        const string Script = """
            for lib in /usr/lib/*/libbpf.so.1 /usr/lib/libbpf.so.1 /lib/*/libbpf.so.1; do
              [ -e "$lib" ] && mount --bind /dev/null "$(readlink -f "$lib")"
            done
            exec "$@"
            """;
        (int code, string output, string error) = Run.Capture("unshare",
            ["--mount", "--propagation", "private", "--", "sh", "-c", Script, "sh", "dotnet", Cli, "--pin-root", pinRoot, "--netns", network.NameB, "attach"],
            null, TimeSpan.FromSeconds(60));
        try
        {
            Assert.True(code == 1, $"exit {code}: {error} {output}");
            string line = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Contains("libbpf.so.1 cannot be loaded: install libbpf 1.1 or later (on Debian and Ubuntu, the package libbpf1)", line);
            Assert.DoesNotContain("unexpected", line);
            Assert.False(Directory.Exists(pinRoot), "a failed attach left its pin root");
        }
        finally
        {
            if (Directory.Exists(pinRoot))
                Directory.Delete(pinRoot, recursive: true);
        }
    }

    [RootFact]
    public void An_unprivileged_attach_where_bpffs_lets_anyone_create_folders_gives_the_remedy_not_only_EPERM()
    {
        using var network = TestNetwork.Create();
        // bpffs mounted without a mode (drwxrwxrwt), in a private mount namespace: the user can create the
        // pin folders, and the kernel refuses only the BPF calls.
        const string Script = """
            mount -t bpf bpf /sys/fs/bpf
            exec setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"
            """;
        (int code, string output, string error) = Run.Capture("unshare",
            ["--mount", "--propagation", "private", "--", "sh", "-c", Script, "sh", "dotnet", Cli, "--pin-root", "/sys/fs/bpf/tcpfreeze-test-user", "--netns", $"/run/netns/{network.NameB}", "attach"],
            new Dictionary<string, string> { ["HOME"] = "/tmp", ["DOTNET_CLI_HOME"] = "/tmp" }, TimeSpan.FromSeconds(60));
        Assert.True(code == 1, $"exit {code}: {error} {output}");
        string line = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("EPERM", line);
        Assert.Contains("run as root or grant CAP_BPF, CAP_NET_ADMIN", line);
        Assert.DoesNotContain("xdp", Run.Checked("ip", "-n", network.NameB, "-d", "link", "show", "dev", TestNetwork.Interface));
    }
}
