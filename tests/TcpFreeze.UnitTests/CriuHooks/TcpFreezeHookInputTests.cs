using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.CriuHookUnit;

/// <summary>The TcpFreeze handlers' checks of their input, which come before anything needs root or the kernel.</summary>
public sealed class TcpFreezeHookInputTests : IDisposable
{
    private readonly StringWriter _log = new();
    private readonly TempDirectory _images = new();
    private readonly CriuHookDispatcher _hook = CriuHookDispatcher.CreateTcpFreeze();

    public void Dispose() => _images.Dispose();

    private int Run(string action, string? images = null, int? pid = null)
    {
        CriuEnvironment step = CriuEnvironment.Parse(new Dictionary<string, string?>
        {
            ["CRTOOLS_SCRIPT_ACTION"] = action,
            ["CRTOOLS_IMAGE_DIR"] = images,
            ["CRTOOLS_INIT_PID"] = pid?.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        // A pin root nobody uses: should a check be missing, nothing shared is touched.
        var settings = new HookSettings { PinRoot = $"/sys/fs/bpf/tcpfreeze-unit-{Guid.NewGuid():N}" };
        return _hook.Dispatch(step, new HookContext(settings, _log, criuPid: 1, executablePath: null));
    }

    private string OnlyLogLine()
    {
        string[] lines = _log.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        return lines[0];
    }

    [Fact]
    public void Pre_dump_without_an_init_pid_fails_naming_CRTOOLS_INIT_PID()
    {
        Assert.Equal(1, Run("pre-dump", images: _images.Path));
        Assert.StartsWith("tcpfreeze-hook: pre-dump failed: CRTOOLS_INIT_PID is not set", OnlyLogLine());
        Assert.Empty(Directory.GetFileSystemEntries(_images.Path));
    }

    [Fact]
    public void Pre_dump_without_an_images_directory_fails_naming_CRTOOLS_IMAGE_DIR()
    {
        Assert.Equal(1, Run("pre-dump", pid: Environment.ProcessId));
        Assert.StartsWith("tcpfreeze-hook: pre-dump failed: CRTOOLS_IMAGE_DIR is not set", OnlyLogLine());
    }

    [Theory]
    [InlineData("pre-restore")]
    [InlineData("pre-resume")]
    public void Restore_steps_without_an_images_directory_fail_naming_CRTOOLS_IMAGE_DIR(string action)
    {
        Assert.Equal(1, Run(action));
        Assert.StartsWith($"tcpfreeze-hook: {action} failed: CRTOOLS_IMAGE_DIR is not set at {action}", OnlyLogLine());
    }

    [Theory]
    [InlineData("pre-restore")]
    [InlineData("pre-resume")]
    public void Restore_steps_without_a_manifest_fail_naming_it(string action)
    {
        Assert.Equal(1, Run(action, images: _images.Path));
        string line = OnlyLogLine();
        Assert.StartsWith($"tcpfreeze-hook: {action} failed: there is no {FreezeManifest.FileName}", line);
        Assert.Contains("Dump again with the hook", line);
    }

    [Theory]
    [InlineData("{ broken")]
    [InlineData("")]
    [InlineData("""{ "version": 1, "connections": ["198.18.0.1:80 -> bad"], "endpoints": [] }""")]
    public void Pre_restore_with_a_corrupt_manifest_fails_naming_it(string content)
    {
        _images.Write(FreezeManifest.FileName, content);
        Assert.Equal(1, Run("pre-restore", images: _images.Path));
        Assert.StartsWith($"tcpfreeze-hook: pre-restore failed: {FreezeManifest.FileName} is ", OnlyLogLine());
    }

    [Theory]
    [InlineData("pre-restore")]
    [InlineData("pre-resume")]
    public void Restore_steps_of_a_tree_with_its_own_namespace_do_nothing(string action)
    {
        (FreezeManifest.Create(7, TimeSpan.FromSeconds(60), [], []) with { OwnNetworkNamespace = true }).Write(_images.Path);
        Assert.Equal(0, Run(action, images: _images.Path));
        Assert.DoesNotContain("failed", _log.ToString());
    }

    [Fact]
    public void Post_resume_after_a_pre_resume_that_finished_does_nothing_and_says_nothing()
    {
        Assert.Equal(0, Run("post-resume"));
        Assert.Empty(_log.ToString());
    }

    [Theory]
    [InlineData("network-lock")]
    [InlineData("network-unlock")]
    [InlineData("setup-namespaces")]
    public void Namespace_lock_steps_without_an_init_pid_fail_naming_CRTOOLS_INIT_PID(string action)
    {
        Assert.Equal(1, Run(action));
        Assert.StartsWith($"tcpfreeze-hook: {action} failed: CRTOOLS_INIT_PID is not set at {action}", OnlyLogLine());
    }

    [Fact]
    public void Setup_namespaces_of_a_tree_in_this_network_namespace_does_nothing()
    {
        Assert.Equal(0, Run("setup-namespaces", pid: Environment.ProcessId));
        Assert.Empty(_log.ToString());
    }

    [Theory]
    [InlineData("post-restore")]
    [InlineData("post-resume")]
    [InlineData("some-future-step")]
    public void Steps_TcpFreeze_has_no_work_at_succeed_silently(string action)
    {
        Assert.Equal(0, Run(action));
        Assert.Empty(_log.ToString());
    }
}
