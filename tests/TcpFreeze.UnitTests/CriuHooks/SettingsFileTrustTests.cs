using System.Diagnostics;
using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.CriuHookUnit;

/// <summary>
/// The hook runs as root and its settings say where it writes and which pins it uses: a settings
/// file is read only when no other user could have written it, and never hangs the hook whatever
/// was planted in its place. (Files owned by another uid need root to make: see the integration
/// tests, SettingsFileOwnerTests.)
/// </summary>
public sealed class SettingsFileTrustTests : IDisposable
{
    private readonly TempDirectory _folder = new();

    public void Dispose() => _folder.Dispose();

    private string ConfigPath => _folder.File("criu-hook.conf");

    /// <summary>Loads the settings on another thread, so that a read that blocks fails the test instead of hanging it.</summary>
    private static string LoadErrorWithin(string path, TimeSpan bound)
    {
        var watch = Stopwatch.StartNew();
        Task<Exception?> load = Task.Run(() =>
        {
            try
            {
                HookSettings.Load(name => name == "TCPFREEZE_HOOK_CONFIG" ? path : null);
                return null;
            }
            catch (Exception e)
            {
                return e;
            }
        });
        Assert.True(load.Wait(bound), $"loading the settings did not return within {bound.TotalSeconds} s");
        Assert.True(watch.Elapsed < bound);
        Exception error = Assert.IsAssignableFrom<IOException>(load.Result);
        return error.Message;
    }

    [Fact]
    public void A_fifo_as_the_settings_file_is_refused_at_once_instead_of_hanging_the_hook()
    {
        (int code, _, string error) = Run.Capture("mkfifo", [ConfigPath], null, TimeSpan.FromSeconds(10));
        Assert.True(code == 0, error);
        string message = LoadErrorWithin(ConfigPath, TimeSpan.FromSeconds(5));
        Assert.Contains($"the hook settings file {ConfigPath} is a FIFO, not a regular file", message);
    }

    [Theory]
    [InlineData("/dev/zero")]
    [InlineData("/dev/urandom")]
    public void A_link_to_an_endless_device_as_the_settings_file_is_refused_without_reading_it(string device)
    {
        File.CreateSymbolicLink(ConfigPath, device);
        string message = LoadErrorWithin(ConfigPath, TimeSpan.FromSeconds(5));
        Assert.Contains($"the hook settings file {ConfigPath} is a symbolic link", message);
        Assert.Contains("put a regular file in its place", message);
    }

    [Fact]
    public void A_settings_file_larger_than_any_real_one_is_refused_without_reading_it()
    {
        using (FileStream sparse = new(ConfigPath, FileMode.CreateNew))
            sparse.SetLength(HookSettings.MaximumFileSize + 1);
        Assert.Contains("more than the 65536 it may be", LoadErrorWithin(ConfigPath, TimeSpan.FromSeconds(5)));
    }

    [Theory]
    [InlineData(UnixFileMode.OtherWrite, "writable by every user (mode 0646)")]
    [InlineData(UnixFileMode.GroupWrite, "writable by its group (mode 0664)")]
    public void A_settings_file_others_can_write_is_refused_with_the_fix(UnixFileMode extra, string problem)
    {
        File.WriteAllText(ConfigPath, "log-file = /etc/tcpfreeze-victim\n");
        File.SetUnixFileMode(ConfigPath, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead | extra);
        string message = LoadErrorWithin(ConfigPath, TimeSpan.FromSeconds(5));
        Assert.Contains($"the hook settings file {ConfigPath} is {problem}", message);
        Assert.Contains($"chown root {ConfigPath} && chmod go-w {ConfigPath}", message);
        Assert.StartsWith("refused, the hook did nothing:", message);
    }

    [Fact]
    public void A_settings_file_in_a_world_writable_folder_without_the_sticky_bit_is_refused()
    {
        File.WriteAllText(ConfigPath, "lease-seconds = 5\n");
        File.SetUnixFileMode(_folder.Path, (UnixFileMode)0b111_111_111);
        string message = LoadErrorWithin(ConfigPath, TimeSpan.FromSeconds(5));
        Assert.Contains($"is in the folder {_folder.Path}, which is writable by every user (mode 0777)", message);
        Assert.Contains($"chmod go-w {_folder.Path}", message);
    }

    [Fact]
    public void A_settings_file_in_a_group_writable_parent_folder_is_refused()
    {
        string inner = Directory.CreateDirectory(_folder.File("etc")).FullName;
        string path = Path.Combine(inner, "criu-hook.conf");
        File.WriteAllText(path, "lease-seconds = 5\n");
        File.SetUnixFileMode(_folder.Path, (UnixFileMode)0b111_111_101);
        string message = LoadErrorWithin(path, TimeSpan.FromSeconds(5));
        Assert.Contains($"is in a folder under {_folder.Path}, which is writable by its group (mode 0775)", message);
    }

    [Fact]
    public void A_settings_file_in_a_root_sticky_folder_such_as_tmp_is_read()
    {
        // /tmp (root's, mode 1777) is a parent of every test folder: a sticky parent is fine.
        File.WriteAllText(ConfigPath, "lease-seconds = 7\n");
        HookSettings settings = HookSettings.Load(name => name == "TCPFREEZE_HOOK_CONFIG" ? ConfigPath : null);
        Assert.Equal(TimeSpan.FromSeconds(7), settings.Lease);
    }

    [Fact]
    public void A_settings_file_with_a_byte_order_mark_and_crlf_lines_is_read()
    {
        File.WriteAllBytes(ConfigPath, [0xEF, 0xBB, 0xBF, .. "lease-seconds = 8\r\nkick = false\r\n"u8]);
        HookSettings settings = HookSettings.Load(name => name == "TCPFREEZE_HOOK_CONFIG" ? ConfigPath : null);
        Assert.Equal(TimeSpan.FromSeconds(8), settings.Lease);
        Assert.False(settings.Kick);
    }
}
