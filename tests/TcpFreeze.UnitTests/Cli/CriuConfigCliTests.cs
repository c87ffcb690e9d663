using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>'tcpfreeze criu-config' as scripts run it, always with a configuration folder of the test's own.</summary>
public sealed class CriuConfigCliTests : IDisposable
{
    private readonly TempDirectory _folder = new();
    private readonly string _config;
    private readonly string _hook;

    public CriuConfigCliTests()
    {
        _config = Path.Combine(_folder.Path, "criu");
        _hook = _folder.Write(CriuConfiguration.HookFileName, "#!/bin/sh\nexit 0\n");
    }

    public void Dispose() => _folder.Dispose();

    private CliResult Run(params string[] arguments) => TcpFreezeCommand.Run(["criu-config", "--config-dir", _config, .. arguments]);

    private string ConfigFile(string name) => Path.Combine(_config, name);

    [Fact]
    public void Printing_shows_the_three_lines_for_default_conf_and_touches_nothing()
    {
        CliResult result = Run("--hook", "/opt/tcpfreeze/tcpfreeze-criu-hook").Succeeds();
        string[] lines = result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, lines.Length);
        Assert.StartsWith($"# for {ConfigFile("default.conf")} ", lines[0]);
        Assert.Equal(["tcp-established", "network-lock skip", "action-script /opt/tcpfreeze/tcpfreeze-criu-hook"], lines[1..]);
        Assert.False(Directory.Exists(_config));
    }

    [Theory]
    [InlineData("runc", "runc.conf")]
    [InlineData("podman", "runc.conf")]
    [InlineData("criu", "default.conf")]
    [InlineData("lxc", "default.conf")] // lxc-checkpoint runs CRIU itself with no configuration file of its own
    public void Printing_for_an_engine_names_the_file_it_reads(string engine, string file)
    {
        CliResult result = Run("--engine", engine, "--hook", _hook).Succeeds();
        Assert.StartsWith($"# for {ConfigFile(file)} ", result.Output);
        Assert.Contains($"action-script {_hook}\n", result.Output);
    }

    [Fact]
    public void The_default_hook_is_next_to_the_command_or_in_usr_local_bin()
    {
        string beside = Path.Combine(AppContext.BaseDirectory, CriuConfiguration.HookFileName);
        string expected = File.Exists(beside) ? beside : CriuConfiguration.DefaultHookPath;
        CliResult result = TcpFreezeCommand.Run("criu-config").Succeeds();
        Assert.EndsWith($"action-script {expected}", result.Output.TrimEnd());
        Assert.StartsWith("# for /etc/criu/default.conf ", result.Output);
    }

    [Fact]
    public void Write_then_write_again_then_remove_gives_back_the_users_file()
    {
        const string user = "# mine\nlog-file /var/log/criu.log\n";
        Directory.CreateDirectory(_config);
        File.WriteAllText(ConfigFile("runc.conf"), user);

        CliResult written = Run("--engine", "podman", "--hook", _hook, "--write").Succeeds();
        Assert.Equal($"added the tcpfreeze block to {ConfigFile("runc.conf")} (action-script {_hook})\n", written.Output);
        Assert.Equal(user + new CriuConfiguration(CriuEngine.Podman, _hook, _config).Block, File.ReadAllText(ConfigFile("runc.conf")));

        CliResult again = Run("--engine", "runc", "--hook", _hook, "--write").Succeeds();
        Assert.Contains("nothing changed", again.Output);

        CliResult removed = Run("--engine", "runc", "--remove").Succeeds();
        Assert.Equal($"removed the tcpfreeze block from {ConfigFile("runc.conf")}\n", removed.Output);
        Assert.Equal(user, File.ReadAllText(ConfigFile("runc.conf")));

        CliResult nothing = Run("--engine", "runc", "--remove").Succeeds();
        Assert.Contains("no tcpfreeze block", nothing.Output);
    }

    [Fact]
    public void Remove_deletes_the_runc_conf_that_write_created()
    {
        Run("--engine", "runc", "--hook", _hook, "--write").Succeeds();
        Assert.True(File.Exists(ConfigFile("runc.conf")));
        CliResult removed = Run("--engine", "runc", "--remove").Succeeds();
        Assert.Equal($"removed {ConfigFile("runc.conf")}, which held only the tcpfreeze block\n", removed.Output);
        Assert.False(File.Exists(ConfigFile("runc.conf")), "an empty runc.conf was left behind");
    }

    [Fact]
    public void Write_creates_the_folder_and_the_file()
    {
        CliResult result = Run("--hook", _hook, "--write").Succeeds();
        Assert.StartsWith($"created {ConfigFile("default.conf")} with the tcpfreeze block", result.Output);
        Assert.Contains($"action-script {_hook}\n", File.ReadAllText(ConfigFile("default.conf")));
    }

    [Fact]
    public void Write_warns_on_stderr_but_succeeds_when_the_other_file_names_the_hook()
    {
        Directory.CreateDirectory(_config);
        File.WriteAllText(ConfigFile("default.conf"), $"action-script {_hook}\n");
        CliResult result = Run("--engine", "runc", "--hook", _hook, "--write");
        Assert.True(result.ExitCode == 0, result.ToString());
        string warning = Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"tcpfreeze: warning: {ConfigFile("default.conf")}:1 also names {_hook}", warning);
        Assert.Contains("twice", warning);
        Assert.True(File.Exists(ConfigFile("runc.conf")));
    }

    [Fact]
    public void Write_warns_when_the_hook_is_not_installed()
    {
        string missing = Path.Combine(_folder.Path, "nowhere", CriuConfiguration.HookFileName);
        CliResult result = Run("--hook", missing, "--write");
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.StartsWith($"tcpfreeze: warning: {missing} does not exist (yet)", result.Error);
    }

    [Fact]
    public void Write_refuses_with_exit_1_when_the_users_lines_set_another_network_lock()
    {
        Directory.CreateDirectory(_config);
        File.WriteAllText(ConfigFile("default.conf"), "network-lock iptables\n");
        Run("--hook", _hook, "--write").FailsWith(1, "line 1 'network-lock iptables' contradicts the hook");
        Assert.Equal("network-lock iptables\n", File.ReadAllText(ConfigFile("default.conf")));
    }

    [Fact]
    public void Damaged_markers_fail_with_exit_1()
    {
        Directory.CreateDirectory(_config);
        File.WriteAllText(ConfigFile("default.conf"), "# BEGIN tcpfreeze\ntcp-established\n");
        Run("--remove").FailsWith(1, "no '# END tcpfreeze' line closes it");
    }

    [Theory]
    [InlineData("use --write or --remove, not both", "--write", "--remove")]
    [InlineData("'docker' is not an engine", "--engine", "docker")]
    [InlineData("must be absolute", "--hook", "tcpfreeze-criu-hook", "--write")]
    [InlineData("white space", "--hook", "/opt/my hook")]
    [InlineData("unrecognized command or argument 'now'", "--write", "now")]
    public void Command_line_mistakes_exit_2_and_write_nothing(string message, params string[] arguments)
    {
        Run(arguments).FailsWith(2, message);
        Assert.False(Directory.Exists(_config));
    }

    [Fact]
    public void Help_lists_the_options()
    {
        CliResult result = TcpFreezeCommand.Run("criu-config", "--help").Succeeds();
        foreach (string option in new[] { "--engine", "--hook", "--write", "--remove", "--config-dir" })
            Assert.Contains(option, result.Output);
    }
}
