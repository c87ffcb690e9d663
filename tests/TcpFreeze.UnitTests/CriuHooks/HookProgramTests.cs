using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.CriuHookUnit;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessEnvironmentCollection
{
    /// <summary>Tests that change this process's environment variables or Console.Error run alone.</summary>
    public const string Name = "CriuHookUnit process environment";
}

/// <summary>The hook executable's entry point, which reads the real process environment.</summary>
[Collection(ProcessEnvironmentCollection.Name)]
public sealed class HookProgramTests : IDisposable
{
    private static readonly string[] Variables =
    [
        "CRTOOLS_SCRIPT_ACTION", "CRTOOLS_IMAGE_DIR", "CRTOOLS_INIT_PID", "TCPFREEZE_HOOK_CONFIG",
        "TCPFREEZE_LEASE_SECONDS", "TCPFREEZE_INTERFACES", "TCPFREEZE_PIN_ROOT", "TCPFREEZE_LOG_FILE", "TCPFREEZE_INGRESS",
    ];

    private readonly Dictionary<string, string?> _saved = Variables.ToDictionary(v => v, Environment.GetEnvironmentVariable);
    private readonly TextWriter _savedError = Console.Error;
    private readonly StringWriter _error = new();
    private readonly TempDirectory _folder = new();

    public HookProgramTests()
    {
        foreach (string name in Variables)
            Environment.SetEnvironmentVariable(name, null);
        // Never the machine's own settings file.
        Environment.SetEnvironmentVariable("TCPFREEZE_HOOK_CONFIG", _folder.Write("hook.conf", ""));
        Console.SetError(_error);
    }

    public void Dispose()
    {
        Console.SetError(_savedError);
        foreach ((string name, string? value) in _saved)
            Environment.SetEnvironmentVariable(name, value);
        _folder.Dispose();
    }

    private string[] ErrorLines => _error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);

    [Theory]
    [InlineData("--help")]
    [InlineData("-h")]
    public void Help_exits_0_with_usage(string argument)
    {
        Assert.Equal(0, HookProgram.Run([argument]));
        Assert.Contains("--action-script", _error.ToString());
        Assert.Contains(HookSettings.DefaultConfigPath, _error.ToString());
    }

    [Theory]
    [InlineData("pre-dump")]
    [InlineData("--version")]
    [InlineData("-x", "--help")]
    public void Other_arguments_exit_2_with_usage(params string[] arguments)
    {
        Assert.Equal(2, HookProgram.Run(arguments));
        Assert.Contains("takes no arguments", _error.ToString());
        Assert.Contains("--action-script", _error.ToString());
    }

    [Fact]
    public void Without_CRTOOLS_SCRIPT_ACTION_it_exits_1_saying_it_is_an_action_script()
    {
        Assert.Equal(1, HookProgram.Run([]));
        string line = Assert.Single(ErrorLines);
        Assert.StartsWith("tcpfreeze-hook: CRTOOLS_SCRIPT_ACTION is not set", line);
        Assert.Contains("--action-script", line);
    }

    [Fact]
    public void A_malformed_init_pid_exits_1()
    {
        Environment.SetEnvironmentVariable("CRTOOLS_SCRIPT_ACTION", "pre-dump");
        Environment.SetEnvironmentVariable("CRTOOLS_INIT_PID", "abc");
        Assert.Equal(1, HookProgram.Run([]));
        Assert.Contains("CRTOOLS_INIT_PID", Assert.Single(ErrorLines));
    }

    [Fact]
    public void A_step_TcpFreeze_has_no_work_at_exits_0_without_reading_the_settings()
    {
        Environment.SetEnvironmentVariable("CRTOOLS_SCRIPT_ACTION", "post-restore");
        Environment.SetEnvironmentVariable("TCPFREEZE_HOOK_CONFIG", _folder.File("missing.conf"));
        Assert.Equal(0, HookProgram.Run([]));
        Assert.Empty(_error.ToString());
    }

    [Fact]
    public void A_missing_settings_file_exits_1_naming_it()
    {
        Environment.SetEnvironmentVariable("CRTOOLS_SCRIPT_ACTION", "network-lock");
        Environment.SetEnvironmentVariable("TCPFREEZE_HOOK_CONFIG", _folder.File("missing.conf"));
        Assert.Equal(1, HookProgram.Run([]));
        string line = Assert.Single(ErrorLines);
        Assert.StartsWith("tcpfreeze-hook: TCPFREEZE_HOOK_CONFIG names ", line);
        Assert.Contains("missing.conf", line);
    }

    [Fact]
    public void A_malformed_settings_file_exits_1_with_file_and_line()
    {
        string path = _folder.Write("bad.conf", "lease-seconds = 5\nlease-seconds = forever\n");
        Environment.SetEnvironmentVariable("CRTOOLS_SCRIPT_ACTION", "pre-dump");
        Environment.SetEnvironmentVariable("TCPFREEZE_HOOK_CONFIG", path);
        Assert.Equal(1, HookProgram.Run([]));
        Assert.StartsWith($"tcpfreeze-hook: {path}:2: 'forever' is not a number of seconds", Assert.Single(ErrorLines));
    }

    [Fact]
    public void A_settings_file_that_cannot_be_read_exits_1_in_one_line_naming_it()
    {
        // Root reads every ordinary file; /proc/self/mem exists but reading it from offset 0 fails (EIO).
        Environment.SetEnvironmentVariable("CRTOOLS_SCRIPT_ACTION", "network-unlock");
        Environment.SetEnvironmentVariable("TCPFREEZE_HOOK_CONFIG", "/proc/self/mem");
        Assert.Equal(1, HookProgram.Run([]));
        Assert.StartsWith("tcpfreeze-hook: cannot read the hook settings file /proc/self/mem", Assert.Single(ErrorLines));
    }

    /// <summary>A step that logs one line and needs no root: pre-restore of a tree that had a network namespace of its own.</summary>
    private void OwnNamespacePreRestore()
    {
        string images = Directory.CreateDirectory(_folder.File("images")).FullName;
        (FreezeManifest.Create(7, TimeSpan.FromSeconds(60), [], []) with { OwnNetworkNamespace = true }).Write(images);
        Environment.SetEnvironmentVariable("CRTOOLS_SCRIPT_ACTION", "pre-restore");
        Environment.SetEnvironmentVariable("CRTOOLS_IMAGE_DIR", images);
    }

    [Fact]
    public void A_step_exits_0_and_also_logs_to_the_log_file()
    {
        string log = _folder.File("hook.log");
        Environment.SetEnvironmentVariable("TCPFREEZE_HOOK_CONFIG", _folder.Write("hook.conf", $"log-file = {log}\n"));
        OwnNamespacePreRestore();
        Assert.Equal(0, HookProgram.Run([]));
        Assert.StartsWith("tcpfreeze-hook: pre-restore: ", Assert.Single(ErrorLines));
        string logged = Assert.Single(File.ReadAllLines(log));
        Assert.EndsWith(ErrorLines[0], logged); // after a timestamp
    }

    [Fact]
    public void A_log_file_that_cannot_be_opened_does_not_fail_the_step()
    {
        string log = _folder.File("no-such-folder/hook.log");
        Environment.SetEnvironmentVariable("TCPFREEZE_LOG_FILE", log);
        OwnNamespacePreRestore();
        Assert.Equal(0, HookProgram.Run([]));
        Assert.Equal(2, ErrorLines.Length);
        Assert.StartsWith($"tcpfreeze-hook: cannot open the log file {log}", ErrorLines[0]);
        Assert.StartsWith("tcpfreeze-hook: pre-restore: ", ErrorLines[1]);
    }

    [Fact]
    public void A_settings_file_every_user_can_write_exits_1_and_its_log_file_is_never_written()
    {
        string victim = _folder.File("victim");
        string path = _folder.Write("hook.conf", $"log-file = {victim}\n");
        File.SetUnixFileMode(path, (UnixFileMode)0b110_110_110);
        Environment.SetEnvironmentVariable("TCPFREEZE_HOOK_CONFIG", path);
        OwnNamespacePreRestore();
        Assert.Equal(1, HookProgram.Run([]));
        string line = Assert.Single(ErrorLines);
        Assert.StartsWith($"tcpfreeze-hook: refused, the hook did nothing: the hook settings file {path} is writable by every user (mode 0666)", line);
        Assert.Contains($"chown root {path} && chmod go-w {path}", line);
        Assert.False(File.Exists(victim));
    }

    [Fact]
    public void A_log_file_in_a_folder_every_user_can_write_exits_1_before_the_step_and_is_never_created()
    {
        string folder = Directory.CreateDirectory(_folder.File("shared")).FullName;
        File.SetUnixFileMode(folder, (UnixFileMode)0b1_111_111_111);
        string log = Path.Combine(folder, "hook.log");
        Environment.SetEnvironmentVariable("TCPFREEZE_LOG_FILE", log);
        OwnNamespacePreRestore();
        Assert.Equal(1, HookProgram.Run([]));
        string line = Assert.Single(ErrorLines);
        Assert.StartsWith($"tcpfreeze-hook: refused, the hook did nothing: the log file {log} is in the folder {folder}, which is writable by every user (mode 1777)", line);
        Assert.False(File.Exists(log));
    }

    [Fact]
    public void Pre_dump_without_an_init_pid_exits_1_through_the_entry_point()
    {
        Environment.SetEnvironmentVariable("CRTOOLS_SCRIPT_ACTION", "pre-dump");
        Environment.SetEnvironmentVariable("CRTOOLS_IMAGE_DIR", _folder.Path);
        Assert.Equal(1, HookProgram.Run([]));
        Assert.StartsWith("tcpfreeze-hook: pre-dump failed: CRTOOLS_INIT_PID is not set", Assert.Single(ErrorLines));
    }
}
