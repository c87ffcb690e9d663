using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// What scripts/setup.sh promises the rest of the suite: CRIU 4.2.1, a mounted bpffs and the command-line tools.
/// A failure here names the missing install step instead of surfacing as an odd failure in a later test.
/// </summary>
public sealed class MachineSetupTests
{
    /// <summary>The CRIU binary tests run: $TCPFREEZE_CRIU as scripts/test.sh exports it, else `criu` on PATH.</summary>
    private static string Criu => Environment.GetEnvironmentVariable("TCPFREEZE_CRIU") is { Length: > 0 } path ? path : "criu";

    [Fact]
    public void Criu_from_setup_is_version_4_2_1()
    {
        string output = Run.Checked(Criu, "--version");

        Assert.Contains("Version: 4.2.1", output, StringComparison.Ordinal);
    }

    [RootFact]
    public void Criu_check_says_looks_good()
    {
        (int code, string output, string error) = Run.Capture(Criu, "check");

        Assert.True(code == 0 && (output + error).Contains("Looks good", StringComparison.Ordinal), $"criu check exited {code}: {error}{output}");
    }

    [Fact]
    public void Bpffs_is_mounted_on_sys_fs_bpf()
    {
        bool mounted = File.ReadLines("/proc/self/mounts")
            .Select(line => line.Split(' '))
            .Any(fields => fields.Length > 2 && fields[1] == "/sys/fs/bpf" && fields[2] == "bpf");

        Assert.True(mounted, "bpffs is not mounted on /sys/fs/bpf: run scripts/setup.sh (or mount -t bpf bpf /sys/fs/bpf)");
    }

    [Theory]
    [InlineData("ip")]
    [InlineData("nsenter")]
    [InlineData("bpftool")]
    [InlineData("iptables")]
    [InlineData("iptables-legacy")]
    [InlineData("nft")]
    [InlineData("nginx")]
    [InlineData("ab")]
    [InlineData("wrk")]
    [InlineData("python3")]
    [InlineData("pgrep")]
    [InlineData("strace")]
    public void Tool_is_on_path(string tool)
    {
        string[] directories = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries);

        Assert.True(directories.Any(directory => File.Exists(Path.Combine(directory, tool))), $"{tool} is not on PATH: run scripts/setup.sh");
    }
}
