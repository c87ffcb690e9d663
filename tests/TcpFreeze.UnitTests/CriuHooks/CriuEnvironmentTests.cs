using TcpFreeze.CriuHooks;

namespace TcpFreeze.Tests;

public sealed class CriuEnvironmentTests
{
    private static Dictionary<string, string?> Env(string? action, string? images = null, string? pid = null)
        => new() { ["CRTOOLS_SCRIPT_ACTION"] = action, ["CRTOOLS_IMAGE_DIR"] = images, ["CRTOOLS_INIT_PID"] = pid };

    [Theory]
    [InlineData("pre-dump", CriuAction.PreDump)]
    [InlineData("post-dump", CriuAction.PostDump)]
    [InlineData("pre-restore", CriuAction.PreRestore)]
    [InlineData("post-restore", CriuAction.PostRestore)]
    [InlineData("pre-resume", CriuAction.PreResume)]
    [InlineData("post-resume", CriuAction.PostResume)]
    [InlineData("network-lock", CriuAction.NetworkLock)]
    [InlineData("network-unlock", CriuAction.NetworkUnlock)]
    [InlineData("orphan-pts-master", CriuAction.Unknown)]
    public void Actions_are_recognised(string name, CriuAction expected)
    {
        CriuEnvironment env = CriuEnvironment.Parse(Env(name, "/proc/42/fd/7", "1234"));
        Assert.Equal(expected, env.Action);
        Assert.Equal(name, env.ActionName);
        Assert.Equal("/proc/42/fd/7", env.ImageDirectory);
        Assert.Equal(1234, env.InitPid);
    }

    [Fact]
    public void A_missing_action_says_the_program_is_an_action_script()
        => Assert.Contains("--action-script", Assert.Throws<FormatException>(() => CriuEnvironment.Parse(Env(null))).Message);

    [Theory]
    [InlineData("abc")]
    [InlineData("-5")]
    [InlineData("0")]
    [InlineData("99999999999")]
    public void A_malformed_init_pid_is_refused_by_name(string pid)
        => Assert.Contains("CRTOOLS_INIT_PID", Assert.Throws<FormatException>(() => CriuEnvironment.Parse(Env("pre-dump", pid: pid))).Message);

    [Fact]
    public void Init_pid_and_image_directory_may_be_absent()
    {
        CriuEnvironment env = CriuEnvironment.Parse(Env("pre-restore"));
        Assert.Null(env.InitPid);
        Assert.Null(env.ImageDirectory);
    }
}
