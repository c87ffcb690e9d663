using System.Diagnostics;
using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// The pin root is shared by every TcpFreeze process of the machine, so it must not let one
/// process, hung or hostile, stop all the others: the lock's wait is bounded and names the
/// holder.
/// </summary>
[Trait("Privileges", "root")]
public sealed class PinRootTrustTests
{
    /// <summary>`flock DIR sleep 60`: a process that holds the pin root's lock and does nothing.</summary>
    private sealed class LockHolder : IDisposable
    {
        private readonly Process _process;

        public LockHolder(string directory)
        {
            var info = new ProcessStartInfo("flock") { UseShellExecute = false };
            foreach (string argument in new[] { "--exclusive", directory, "sleep", "60" })
                info.ArgumentList.Add(argument);
            _process = Process.Start(info)!;
            var waited = Stopwatch.StartNew();
            // Held once a zero-wait attempt fails (within 10 s).
            while (PinLockIsFree(directory) && waited.Elapsed < TimeSpan.FromSeconds(10))
                Thread.Sleep(20);
            Assert.False(PinLockIsFree(directory), "flock did not take the lock");
        }

        public int Pid => _process.Id;

        private static bool PinLockIsFree(string directory)
        {
            (int code, _, _) = Run.Capture("flock", ["--exclusive", "--nonblock", directory, "true"], null, TimeSpan.FromSeconds(10));
            return code == 0;
        }

        public void Dispose()
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
            _process.Dispose();
        }
    }

    [RootFact]
    public void A_held_pin_lock_fails_a_command_after_its_wait_and_names_the_holder()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        using var holder = new LockHolder(pins.Path);

        var watch = Stopwatch.StartNew();
        CliResult result = TcpFreezeCommand.Run("--pin-root", pins.Path, "--netns", $"/run/netns/{network.NameB}", "--wait", "1", "attach");
        TimeSpan took = watch.Elapsed;
        result.FailsWith(1, $"lock pin directory {pins.Path}");
        Assert.Contains($"process {holder.Pid} (flock) has held the lock on {pins.Path} for more than 1 s", result.Error);
        Assert.Contains("--wait SECONDS", result.Error);
        Assert.True(took < TimeSpan.FromSeconds(30), $"took {took.TotalSeconds:F1} s");
        Assert.Empty(Directory.GetDirectories(pins.Path));
    }

    [RootTheory]
    [InlineData("freeze", "--endpoint", "198.18.0.1:80")]
    [InlineData("thaw", "--endpoint", "198.18.0.1:80")]
    [InlineData("thaw", "--all")]
    [InlineData("detach")]
    public void Freeze_thaw_and_detach_give_up_on_a_held_lock_after_their_wait_and_name_the_holder(params string[] command)
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B);
        TcpFreezer.Attach(options).Dispose();
        try
        {
            using var holder = new LockHolder(pins.Path);
            CliResult result = TcpFreezeCommand.Run(["--pin-root", pins.Path, "--netns", network.NameB, "--wait", "0.5", .. command]);
            result.FailsWith(1, $"process {holder.Pid} (flock) has held the lock on {pins.Path} for more than 0.5 s");
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }

    [RootFact]
    public void The_library_and_the_hook_wait_a_bounded_time_by_default()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        using var holder = new LockHolder(pins.Path);
        FreezerOptions fromHook = new HookSettings { PinRoot = pins.Path }.ToFreezerOptions() with { Namespace = network.B };
        Assert.Equal(FreezerOptions.DefaultLockTimeout, fromHook.LockTimeout);
        Assert.InRange(FreezerOptions.DefaultLockTimeout, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30));

        var watch = Stopwatch.StartNew();
        var failure = Assert.Throws<TcpFreezeException>(() => TcpFreezer.Attach(fromHook with { LockTimeout = TimeSpan.FromMilliseconds(300) }).Dispose());
        Assert.InRange(watch.Elapsed, TimeSpan.FromMilliseconds(300), TimeSpan.FromSeconds(10));
        Assert.Contains($"process {holder.Pid} (flock)", failure.Message);

        watch.Restart();
        Assert.Throws<TcpFreezeException>(() => TcpFreezer.Attach(fromHook).Dispose());
        Assert.InRange(watch.Elapsed, FreezerOptions.DefaultLockTimeout, FreezerOptions.DefaultLockTimeout + TimeSpan.FromSeconds(10));
    }
    private static string TestPinRoot(string what) => $"/sys/fs/bpf/tcpfreeze-test-{what}-{Environment.ProcessId}";

    [RootFact]
    public void A_pin_root_another_user_created_is_refused_with_the_fix_and_left_unused()
    {
        using var network = TestNetwork.Create();
        string squatted = TestPinRoot("squatted");
        // /sys/fs/bpf mounted without a mode is drwxrwxrwt: nobody may create a folder there first. setup.sh mounts it
        // with mode 0700, where nobody cannot, so the folder is made as nobody would have left it: theirs, mode 0777.
        Directory.CreateDirectory(squatted);
        File.SetUnixFileMode(squatted, (UnixFileMode)0x1FF); // 0777
        Run.Checked("chown", "65534:65534", squatted);
        try
        {
            TcpFreezeCommand.Run("--pin-root", squatted, "--netns", $"/run/netns/{network.NameB}", "attach")
                .FailsWith(1, $"{squatted} belongs to uid 65534, not root, so another user could lock it for ever or move its pins away");
            Assert.Empty(Directory.GetFileSystemEntries(squatted));
            Assert.DoesNotContain("xdp", Run.Checked("ip", "-n", network.NameB, "-d", "link", "show", "dev", TestNetwork.Interface));
        }
        finally
        {
            Directory.Delete(squatted);
        }
    }

    [RootFact]
    public void A_pin_root_writable_by_others_is_refused_even_when_it_is_roots()
    {
        using var network = TestNetwork.Create();
        string open = TestPinRoot("world-writable");
        Directory.CreateDirectory(open);
        File.SetUnixFileMode(open, (UnixFileMode)0x1FF); // 0777
        try
        {
            TcpFreezeCommand.Run("--pin-root", open, "--netns", $"/run/netns/{network.NameB}", "attach")
                .FailsWith(1, $"{open} is writable by every user (mode 0777)");
            Assert.Empty(Directory.GetFileSystemEntries(open));
        }
        finally
        {
            Directory.Delete(open);
        }
    }

    [RootFact]
    public void A_pin_root_that_links_out_of_bpffs_is_refused_and_never_mounts_a_second_bpffs()
    {
        using var network = TestNetwork.Create();
        using var elsewhere = new TempDirectory();
        string link = TestPinRoot("link");
        File.CreateSymbolicLink(link, elsewhere.Path);
        try
        {
            // In a private mount namespace, so that a mount (the bug) could not hide anyone's pins.
            const string Script = """
                before=$(grep -c ' /sys/fs/bpf ' /proc/self/mountinfo)
                "$@"; code=$?
                after=$(grep -c ' /sys/fs/bpf ' /proc/self/mountinfo)
                echo "mounts $before $after" >&2
                exit $code
                """;
            (int code, string output, string error) = Run.Capture("unshare",
                ["--mount", "--propagation", "private", "--", "sh", "-c", Script, "sh",
                 "dotnet", Path.Combine(AppContext.BaseDirectory, "TcpFreeze.Cli.dll"), "--pin-root", link, "--netns", $"/run/netns/{network.NameB}", "attach"],
                null, TimeSpan.FromSeconds(60));
            Assert.True(code == 1, $"exit {code}: {error} {output}");
            Assert.Contains($"{link} (which resolves to {elsewhere.Path}) is not on a bpf filesystem", error);
            Assert.Contains("mounts 1 1", error);
            Assert.Empty(Directory.GetFileSystemEntries(elsewhere.Path));
        }
        finally
        {
            File.Delete(link);
        }
    }
}

