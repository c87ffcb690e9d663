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
        // The runtime's own text for the missing folder, not its resource key.
        Assert.Contains($"cannot open the log file {missingLogFolder} (Could not find a part of the path", error);
        Assert.DoesNotMatch(ResourceKey(), error.Replace(FreezeManifest.FileName, "").Replace("TCPFREEZE_", "").Replace("CRTOOLS_", ""));
    }
}
