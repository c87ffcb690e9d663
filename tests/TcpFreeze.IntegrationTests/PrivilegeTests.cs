using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// Missing privileges and a missing bpffs: the CLI says what is wrong and what to do,
/// and changes nothing. The tests drop privileges themselves (an unprivileged user,
/// or root without CAP_SYS_ADMIN in a private mount namespace), so they need root.
/// </summary>
[Trait("Privileges", "root")]
public sealed class PrivilegeTests
{
    private static readonly string Cli = Path.Combine(AppContext.BaseDirectory, "TcpFreeze.Cli.dll");

    [RootFact]
    public void An_unprivileged_user_gets_a_permission_error_and_nothing_is_created()
    {
        using var network = TestNetwork.Create();
        string pinRoot = $"/sys/fs/bpf/tcpfreeze-test-unprivileged-{Environment.ProcessId}";
        (int code, string output, string error) = Run.Capture("setpriv",
            ["--reuid=65534", "--regid=65534", "--clear-groups", "--", "dotnet", Cli, "attach", "--pin-root", pinRoot, "--netns", $"/run/netns/{network.NameB}"],
            new Dictionary<string, string> { ["HOME"] = "/tmp", ["DOTNET_CLI_HOME"] = "/tmp" }, TimeSpan.FromSeconds(60));
        Assert.True(code == 1, $"exit {code}: {error} {output}");
        string line = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("tcpfreeze: ", line);
        Assert.Contains("run as root", line);
        Assert.False(Directory.Exists(pinRoot), "an unprivileged attach created the pin root");
        Assert.DoesNotContain("xdp", Run.Checked("ip", "-n", network.NameB, "-d", "link", "show", "dev", TestNetwork.Interface));
    }

    [RootFact]
    public void Without_bpffs_and_without_the_right_to_mount_it_the_error_says_how_to_mount_it()
    {
        // A private mount namespace without bpffs, and root without CAP_SYS_ADMIN inside it.
        const string Script = """
            while umount /sys/fs/bpf 2>/dev/null; do :; done
            exec setpriv --bounding-set=-sys_admin --inh-caps=-sys_admin -- "$@"
            """;
        string pinRoot = $"/sys/fs/bpf/tcpfreeze-test-nobpffs-{Environment.ProcessId}";
        (int code, string output, string error) = Run.Capture("unshare",
            ["--mount", "--propagation", "private", "--", "sh", "-c", Script, "sh", "dotnet", Cli, "list", "--pin-root", pinRoot],
            null, TimeSpan.FromSeconds(60));
        Assert.True(code == 1, $"exit {code}: {error} {output}");
        string line = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("bpffs is not mounted", line);

        (code, output, error) = Run.Capture("unshare",
            ["--mount", "--propagation", "private", "--", "sh", "-c", Script, "sh", "dotnet", Cli, "attach", "--pin-root", pinRoot, "--dev", "lo"],
            null, TimeSpan.FromSeconds(60));
        Assert.True(code == 1, $"exit {code}: {error} {output}");
        line = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("mount -t bpf bpf /sys/fs/bpf", line);
        Assert.False(Directory.Exists(pinRoot));
    }
}
