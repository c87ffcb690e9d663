using System.Diagnostics;
using System.Text.RegularExpressions;
using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.Criu;

/// <summary>
/// The published NativeAOT hook given a hostile images directory and a log file it cannot open:
/// it fails the step at once with words, never hangs CRIU's restore, never prints the runtime's
/// resource keys ("IO_PathNotFound_Path") in CRIU's log. CRIU itself is not run.
/// </summary>
[Collection("criu")]
[Trait("Privileges", "root")]
public sealed partial class HookInputTrustTests(CriuFixture fixture) : IDisposable
{
    private readonly TempDirectory _images = new();

    public void Dispose() => _images.Dispose();

    /// <summary>A .NET resource key: words joined by underscores, such as IO_PathNotFound_Path or Arg_OutOfMemoryException.</summary>
    [GeneratedRegex(@"\b[A-Z][A-Za-z]*_[A-Za-z]+(_[A-Za-z]+)*\b")]
    private static partial Regex ResourceKey();

    [RootFact]
    public void The_native_hook_refuses_a_fifo_manifest_at_once_and_says_what_failed_in_words()
    {
        Run.Checked("mkfifo", _images.File(FreezeManifest.FileName));
        string missingLogFolder = Path.Combine(_images.Path, "no-such-folder", "hook.log");
        var watch = Stopwatch.StartNew();
        (int code, _, string error) = Run.Capture(fixture.Hook, [], new Dictionary<string, string>
        {
            ["CRTOOLS_SCRIPT_ACTION"] = "pre-restore",
            ["CRTOOLS_IMAGE_DIR"] = _images.Path,
            ["TCPFREEZE_HOOK_CONFIG"] = "",
            ["TCPFREEZE_PIN_ROOT"] = "/sys/fs/bpf/tcpfreeze-test-unused",
            ["TCPFREEZE_LOG_FILE"] = missingLogFolder,
        }, TimeSpan.FromSeconds(30));
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"the hook took {watch.Elapsed.TotalSeconds:F1} s: {error}");
        Assert.True(code == 1, error);
        Assert.Contains($"{FreezeManifest.FileName} in the images directory is a FIFO, not a regular file", error);
        // A missing log folder is said in words, and does not fail the step by itself.
        Assert.Contains($"cannot open the log file {missingLogFolder}: its folder {Path.GetDirectoryName(missingLogFolder)} does not exist; logging to CRIU's log only", error);
        Assert.DoesNotMatch(ResourceKey(), error.Replace(FreezeManifest.FileName, "").Replace("TCPFREEZE_", "").Replace("CRTOOLS_", ""));
    }

    /// <summary>
    /// Runs the published hook at pre-restore of an images directory with no manifest, with <paramref name="config"/> as its
    /// settings file: a hook that accepted the settings would fail on the missing manifest, freezing nothing either way.
    /// </summary>
    private (int Code, string Error, TimeSpan Took) RunHookWithSettings(string config)
    {
        var watch = Stopwatch.StartNew();
        (int code, _, string error) = Run.Capture(fixture.Hook, [], new Dictionary<string, string>
        {
            ["CRTOOLS_SCRIPT_ACTION"] = "pre-restore",
            ["CRTOOLS_IMAGE_DIR"] = _images.Path,
            ["TCPFREEZE_HOOK_CONFIG"] = config,
            ["TCPFREEZE_PIN_ROOT"] = $"/sys/fs/bpf/tfin{Environment.ProcessId}",
        }, TimeSpan.FromSeconds(30));
        return (code, error, watch.Elapsed);
    }

    [RootFact]
    public void The_native_hook_refuses_a_fifo_settings_file_within_5_s_and_leaves_nothing_behind()
    {
        string config = _images.File("criu-hook.conf");
        Run.Checked("mkfifo", config);
        (int code, string error, TimeSpan took) = RunHookWithSettings(config);
        Assert.True(took < TimeSpan.FromSeconds(5), $"the hook took {took.TotalSeconds:F1} s: {error}");
        Assert.True(code == 1, error);
        Assert.Contains($"refused, the hook did nothing: the hook settings file {config} is a FIFO, not a regular file", error);
        Assert.False(Directory.Exists($"/sys/fs/bpf/tfin{Environment.ProcessId}"));
        Assert.Equal([config], Directory.GetFileSystemEntries(_images.Path));
    }

    [RootFact]
    public void The_native_hook_refuses_a_link_to_dev_urandom_as_its_settings_file_within_5_s()
    {
        string config = _images.File("criu-hook.conf");
        File.CreateSymbolicLink(config, "/dev/urandom");
        (int code, string error, TimeSpan took) = RunHookWithSettings(config);
        Assert.True(took < TimeSpan.FromSeconds(5), $"the hook took {took.TotalSeconds:F1} s: {error}");
        Assert.True(code == 1, error);
        Assert.Contains($"the hook settings file {config} is a symbolic link", error);
        Assert.False(Directory.Exists($"/sys/fs/bpf/tfin{Environment.ProcessId}"));
    }

    [RootFact]
    public void The_native_hook_refuses_a_settings_file_owned_by_another_user_and_never_writes_its_log_file()
    {
        // The attack of issue 19: a user-owned settings file whose log-file makes root append to a file that user chose.
        string victim = _images.Write("victim", "precious\n");
        string config = _images.Write("criu-hook.conf", $"log-file = {victim}\n");
        Run.Checked("chown", "65534", config);
        (int code, string error, TimeSpan took) = RunHookWithSettings(config);
        Assert.True(took < TimeSpan.FromSeconds(5), $"the hook took {took.TotalSeconds:F1} s: {error}");
        Assert.True(code == 1, error);
        Assert.Contains($"the hook settings file {config} belongs to uid 65534, not root", error);
        Assert.Contains($"chown root {config} && chmod go-w {config}", error);
        Assert.Equal("precious\n", File.ReadAllText(victim));
        Assert.False(Directory.Exists($"/sys/fs/bpf/tfin{Environment.ProcessId}"));
    }

    [RootFact]
    public void The_native_hook_refuses_a_settings_file_in_a_folder_owned_by_another_user()
    {
        string folder = Directory.CreateDirectory(_images.File("etc")).FullName;
        string config = Path.Combine(folder, "criu-hook.conf");
        File.WriteAllText(config, "lease-seconds = 5\n");
        Run.Checked("chown", "65534", folder);
        (int code, string error, _) = RunHookWithSettings(config);
        Assert.True(code == 1, error);
        Assert.Contains($"the hook settings file {config} is in the folder {folder}, which belongs to uid 65534, not root", error);
        Assert.Contains($"chown root {folder} && chmod go-w {folder}", error);
    }

    [RootFact]
    public void The_native_hook_refuses_a_log_file_in_a_folder_owned_by_another_user()
    {
        string folder = Directory.CreateDirectory(_images.File("logs")).FullName;
        Run.Checked("chown", "65534", folder);
        string log = Path.Combine(folder, "hook.log");
        string config = _images.Write("criu-hook.conf", $"log-file = {log}\n");
        (int code, string error, _) = RunHookWithSettings(config);
        Assert.True(code == 1, error);
        Assert.Contains($"the log file {log} is in the folder {folder}, which belongs to uid 65534, not root", error);
        Assert.False(File.Exists(log));
    }
}
