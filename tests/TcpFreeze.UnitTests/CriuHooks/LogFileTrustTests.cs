using System.Diagnostics;
using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.CriuHookUnit;

/// <summary>
/// The hook, running as root, appends to its log file: only in a folder no other user can change,
/// never through a link, never into a FIFO (which would block the open).
/// </summary>
public sealed class LogFileTrustTests : IDisposable
{
    private readonly TempDirectory _folder = new();

    public void Dispose() => _folder.Dispose();

    private static FileRefusedException RefusalWithin(string path, TimeSpan bound)
    {
        var watch = Stopwatch.StartNew();
        Task<Exception?> open = Task.Run(() =>
        {
            try
            {
                TrustedFile.OpenForAppend(path, "the log file").Dispose();
                return null;
            }
            catch (Exception e)
            {
                return e;
            }
        });
        Assert.True(open.Wait(bound), $"opening the log file did not return within {bound.TotalSeconds} s");
        Assert.True(watch.Elapsed < bound);
        return Assert.IsType<FileRefusedException>(open.Result);
    }

    [Fact]
    public void A_log_file_in_a_trusted_folder_is_created_private_and_appended_to()
    {
        string path = _folder.File("hook.log");
        TrustedFile.OpenForAppend(path, "the log file").Dispose();
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        File.AppendAllText(path, "first\n");
        using (var descriptor = TrustedFile.OpenForAppend(path, "the log file"))
        using (var stream = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(descriptor.DangerousGetHandle(), ownsHandle: false), FileAccess.Write, 1))
            stream.Write("second\n"u8);
        Assert.Equal("first\nsecond\n", File.ReadAllText(path));
    }

    [Fact]
    public void A_link_as_the_log_file_is_refused_and_its_target_left_alone()
    {
        string victim = _folder.Write("victim", "precious");
        string path = _folder.File("hook.log");
        File.CreateSymbolicLink(path, victim);
        FileRefusedException e = RefusalWithin(path, TimeSpan.FromSeconds(5));
        Assert.Equal(FileRefusal.Link, e.Reason);
        Assert.Contains($"the log file {path} is a symbolic link", e.Message);
        Assert.Equal("precious", File.ReadAllText(victim));
    }

    [Fact]
    public void A_fifo_as_the_log_file_is_refused_at_once_instead_of_blocking_the_hook()
    {
        string path = _folder.File("hook.log");
        Run.Checked("mkfifo", path);
        FileRefusedException e = RefusalWithin(path, TimeSpan.FromSeconds(5));
        // With no reader, O_NONBLOCK makes the open fail with ENXIO; either way it is refused, not waited for.
        Assert.True(e.Reason is FileRefusal.OpenFailed or FileRefusal.NotRegular, e.Message);
    }

    [Theory]
    [InlineData(0b111_111_111, "writable by every user (mode 0777)")]
    [InlineData(0b1_111_111_111, "writable by every user (mode 1777)")]
    [InlineData(0b111_111_101, "writable by its group (mode 0775)")]
    public void A_log_file_in_a_folder_others_can_write_is_refused_even_when_sticky(int mode, string problem)
    {
        // Sticky is not enough for the log's own folder: another user could have created the file (or a hard link) there first.
        string path = _folder.File("hook.log");
        File.SetUnixFileMode(_folder.Path, (UnixFileMode)mode);
        FileRefusedException e = RefusalWithin(path, TimeSpan.FromSeconds(5));
        Assert.Equal(FileRefusal.Untrusted, e.Reason);
        Assert.Contains($"the log file {path} is in the folder {_folder.Path}, which is {problem}", e.Message);
        Assert.Contains($"chmod go-w {_folder.Path}", e.Message);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void A_log_file_whose_folder_is_missing_is_a_plain_open_failure()
    {
        string path = _folder.File("missing/hook.log");
        FileRefusedException e = RefusalWithin(path, TimeSpan.FromSeconds(5));
        Assert.Equal(FileRefusal.Missing, e.Reason);
        Assert.Contains($"cannot open the log file {path}: its folder {_folder.File("missing")} does not exist", e.Message);
    }
}
