using System.Text;
using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// The CRIU configuration block: printed, written, replaced and removed in a folder of
/// the test's own (never the machine's /etc/criu), without touching the user's lines.
/// </summary>
public sealed class CriuConfigurationTests : IDisposable
{
    private readonly TempDirectory _folder = new();
    private readonly string _config;
    private readonly string _hook;

    public CriuConfigurationTests()
    {
        _config = Path.Combine(_folder.Path, "criu");
        // A hook that exists, so the only warnings are the ones a test provokes.
        _hook = _folder.Write(CriuConfiguration.HookFileName, "#!/bin/sh\nexit 0\n");
    }

    public void Dispose() => _folder.Dispose();

    private CriuConfiguration Configuration(CriuEngine engine = CriuEngine.Criu, string? hook = null) => new(engine, hook ?? _hook, _config);

    private string ConfigFile(string name) => Path.Combine(_config, name);

    private string Block(string? hook = null) =>
        "# BEGIN tcpfreeze (managed by 'tcpfreeze criu-config')\n" +
        "tcp-established\n" +
        "network-lock skip\n" +
        $"action-script {hook ?? _hook}\n" +
        "# END tcpfreeze\n";

    private void Put(string name, string content) => Put(name, Encoding.UTF8.GetBytes(content));

    private void Put(string name, byte[] content)
    {
        Directory.CreateDirectory(_config);
        File.WriteAllBytes(ConfigFile(name), content);
    }

    private string Read(string name) => File.ReadAllText(ConfigFile(name));

    // ------------------------------------------------------------------ what and where

    [Theory]
    [InlineData(CriuEngine.Criu, "default.conf", "runc.conf")]
    [InlineData(CriuEngine.Runc, "runc.conf", "default.conf")]
    [InlineData(CriuEngine.Podman, "runc.conf", "default.conf")]
    public void Criu_uses_default_conf_and_runc_and_podman_use_runc_conf(CriuEngine engine, string file, string other)
    {
        CriuConfiguration configuration = Configuration(engine);
        Assert.Equal(file, CriuConfiguration.FileNameFor(engine));
        Assert.Equal(ConfigFile(file), configuration.FilePath);
        Assert.Equal(ConfigFile(other), configuration.OtherFilePath);
    }

    [Fact]
    public void The_lines_keep_established_connections_skip_CRIUs_lock_and_name_the_hook()
    {
        CriuConfiguration configuration = Configuration(hook: "/opt/tcpfreeze/tcpfreeze-criu-hook");
        Assert.Equal(["tcp-established", "network-lock skip", "action-script /opt/tcpfreeze/tcpfreeze-criu-hook"], configuration.Lines);
        Assert.Equal(Block("/opt/tcpfreeze/tcpfreeze-criu-hook"), configuration.Block);
        Assert.Equal("/etc/criu", new CriuConfiguration(CriuEngine.Criu, "/x").Directory);
    }

    [Theory]
    [InlineData("tcpfreeze-criu-hook", "absolute")]
    [InlineData("./tcpfreeze-criu-hook", "absolute")]
    [InlineData("", "absolute")]
    [InlineData("/opt/my hooks/tcpfreeze-criu-hook", "white space")]
    [InlineData("/opt/hook\n--network-lock iptables", "white space")]
    [InlineData("/opt/\"hook\"", "quote")]
    public void A_hook_path_a_configuration_line_cannot_carry_is_refused(string hook, string reason)
    {
        Assert.Contains(reason, CriuConfiguration.HookPathProblem(hook));
        Assert.Throws<ArgumentException>(() => new CriuConfiguration(CriuEngine.Criu, hook, _config));
    }

    [Fact]
    public void The_default_hook_is_the_one_next_to_the_command_when_it_is_there()
    {
        Assert.Equal(_hook, CriuConfiguration.FindHook(_folder.Path));
        Assert.Equal(CriuConfiguration.DefaultHookPath, CriuConfiguration.FindHook(_config)); // no hook in there
        Assert.Equal(CriuConfiguration.DefaultHookPath, CriuConfiguration.FindHook(null));
        Assert.Equal("/usr/local/bin/tcpfreeze-criu-hook", CriuConfiguration.DefaultHookPath);
    }

    // ------------------------------------------------------------------ writing

    [Fact]
    public void Writing_creates_the_folder_and_a_0644_file_with_just_the_block()
    {
        CriuConfigurationChange change = Configuration().Write();
        Assert.Equal(CriuConfigurationOutcome.Created, change.Outcome);
        Assert.Equal(ConfigFile("default.conf"), change.FilePath);
        Assert.Empty(change.Warnings);
        Assert.Equal(Block(), Read("default.conf"));
        const UnixFileMode rw_r__r__ = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        Assert.Equal(rw_r__r__, File.GetUnixFileMode(ConfigFile("default.conf")));
        Assert.Equal(rw_r__r__ | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute, File.GetUnixFileMode(_config));
        Assert.Equal(["default.conf"], Directory.GetFiles(_config).Select(Path.GetFileName)); // no temporary file left
    }

    [Fact]
    public void Writing_appends_the_block_and_keeps_the_users_lines_and_permissions()
    {
        const string user = "# my settings\nlog-file /var/log/criu.log\ntcp-established\n";
        Put("runc.conf", user);
        File.SetUnixFileMode(ConfigFile("runc.conf"), UnixFileMode.UserRead | UnixFileMode.UserWrite);

        CriuConfigurationChange change = Configuration(CriuEngine.Runc).Write();
        Assert.Equal(CriuConfigurationOutcome.Added, change.Outcome);
        Assert.Equal(user + Block(), Read("runc.conf"));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(ConfigFile("runc.conf")));
    }

    [Fact]
    public void A_last_line_without_a_newline_gets_one_before_the_block()
    {
        Put("default.conf", "log-file /var/log/criu.log");
        Configuration().Write();
        Assert.Equal("log-file /var/log/criu.log\n" + Block(), Read("default.conf"));
    }

    [Fact]
    public void Writing_the_same_block_again_changes_nothing()
    {
        Put("default.conf", "shell-job\n");
        Configuration().Write();
        DateTime written = File.GetLastWriteTimeUtc(ConfigFile("default.conf"));
        File.SetLastWriteTimeUtc(ConfigFile("default.conf"), written.AddHours(-1));

        CriuConfigurationChange again = Configuration().Write();
        Assert.Equal(CriuConfigurationOutcome.Unchanged, again.Outcome);
        Assert.Equal("shell-job\n" + Block(), Read("default.conf"));
        Assert.Equal(written.AddHours(-1), File.GetLastWriteTimeUtc(ConfigFile("default.conf")));
    }

    [Fact]
    public void Writing_replaces_an_older_block_in_place()
    {
        string old = "# BEGIN tcpfreeze (managed by 'tcpfreeze criu-config')\naction-script /old/tcpfreeze-criu-hook\nnetwork-lock iptables\n# END tcpfreeze\n";
        Put("default.conf", "shell-job\n" + old + "log-file /var/log/criu.log\n");
        CriuConfigurationChange change = Configuration().Write();
        Assert.Equal(CriuConfigurationOutcome.Replaced, change.Outcome);
        Assert.Equal("shell-job\n" + Block() + "log-file /var/log/criu.log\n", Read("default.conf"));
    }

    [Fact]
    public void Writing_follows_a_symbolic_link_and_keeps_it()
    {
        string real = _folder.Write("real.conf", "shell-job\n");
        Directory.CreateDirectory(_config);
        File.CreateSymbolicLink(ConfigFile("default.conf"), real);
        Configuration().Write();
        Assert.NotNull(new FileInfo(ConfigFile("default.conf")).LinkTarget);
        Assert.Equal("shell-job\n" + Block(), File.ReadAllText(real));
    }

    [Theory]
    [InlineData("network-lock iptables", "line 2 'network-lock iptables' contradicts")]
    [InlineData("network-lock nftables # the default is slow", "line 2 'network-lock nftables' contradicts")]
    [InlineData("network-lock=iptables", "line 2 'network-lock=iptables' contradicts")]
    [InlineData("  network-lock\tiptables", "line 2 'network-lock iptables' contradicts")]
    [InlineData("no-tcp-established", "line 2 'no-tcp-established' contradicts")]
    public void Writing_refuses_when_the_users_own_lines_contradict_the_hook(string line, string message)
    {
        string user = $"shell-job\n{line}\n";
        Put("default.conf", user);
        string error = Assert.Throws<CriuConfigurationException>(() => Configuration().Write()).Message;
        Assert.StartsWith($"refusing to write {ConfigFile("default.conf")}: its own ", error);
        Assert.Contains(message, error);
        Assert.Contains("network-lock skip", error);
        Assert.Equal(user, Read("default.conf"));
    }

    [Fact]
    public void Every_contradicting_line_is_named()
    {
        Put("runc.conf", "network-lock iptables\nshell-job\nno-tcp-established\n");
        string error = Assert.Throws<CriuConfigurationException>(() => Configuration(CriuEngine.Podman).Write()).Message;
        Assert.Contains("lines 1 'network-lock iptables', 3 'no-tcp-established' contradict", error);
    }

    [Theory]
    [InlineData("network-lock skip")]
    [InlineData("# network-lock iptables")]
    [InlineData("tcp-established # network-lock iptables")]
    [InlineData("log-file /var/log/network-lock-iptables.log")]
    public void Lines_that_agree_with_the_hook_or_are_comments_are_no_conflict(string line)
    {
        Put("default.conf", line + "\n");
        Assert.Equal(CriuConfigurationOutcome.Added, Configuration().Write().Outcome);
        Assert.Equal(line + "\n" + Block(), Read("default.conf"));
    }

    // ------------------------------------------------------------------ removing

    [Fact]
    public void Removing_gives_back_the_file_byte_for_byte()
    {
        // CRLF lines, a byte that is not UTF-8, tabs and trailing blanks: all must survive.
        byte[] user = [.. "# mine\r\nlog-file /var/log/criu.log\r\n"u8, 0xFF, 0xFE, .. " \t\n\n"u8];
        Put("runc.conf", user);
        Configuration(CriuEngine.Runc).Write();
        Assert.Equal(user, File.ReadAllBytes(ConfigFile("runc.conf"))[..user.Length]);

        CriuConfigurationChange change = Configuration(CriuEngine.Runc).Remove();
        Assert.Equal(CriuConfigurationOutcome.Removed, change.Outcome);
        Assert.Equal(user, File.ReadAllBytes(ConfigFile("runc.conf")));
    }

    [Fact]
    public void Removing_a_block_between_user_lines_leaves_them_as_they_were()
    {
        Put("default.conf", "shell-job\n" + Block("/old/hook") + "log-file /var/log/criu.log\n");
        Configuration().Remove();
        Assert.Equal("shell-job\nlog-file /var/log/criu.log\n", Read("default.conf"));
    }

    [Fact]
    public void Removing_the_only_block_removes_the_file_it_created()
    {
        Assert.Equal(CriuConfigurationOutcome.Created, Configuration(CriuEngine.Runc).Write().Outcome);
        CriuConfigurationChange change = Configuration(CriuEngine.Runc).Remove();
        Assert.Equal(CriuConfigurationOutcome.Removed, change.Outcome);
        Assert.True(change.FileDeleted);
        Assert.False(File.Exists(ConfigFile("runc.conf")));
    }

    [Fact]
    public void Removing_the_block_from_a_file_with_other_lines_keeps_the_file()
    {
        Put("runc.conf", "shell-job\n");
        Configuration(CriuEngine.Runc).Write();
        CriuConfigurationChange change = Configuration(CriuEngine.Runc).Remove();
        Assert.False(change.FileDeleted);
        Assert.Equal("shell-job\n", Read("runc.conf"));
    }

    [Fact]
    public void Removing_without_a_block_or_a_file_touches_nothing()
    {
        Assert.Equal(CriuConfigurationOutcome.NothingToRemove, Configuration().Remove().Outcome);
        Assert.False(Directory.Exists(_config));

        Put("default.conf", "shell-job\n");
        DateTime before = File.GetLastWriteTimeUtc(ConfigFile("default.conf")).AddHours(-1);
        File.SetLastWriteTimeUtc(ConfigFile("default.conf"), before);
        Assert.Equal(CriuConfigurationOutcome.NothingToRemove, Configuration().Remove().Outcome);
        Assert.Equal("shell-job\n", Read("default.conf"));
        Assert.Equal(before, File.GetLastWriteTimeUtc(ConfigFile("default.conf")));
    }

    [Fact]
    public void Removing_warns_about_a_hook_line_of_the_users_that_stays()
    {
        Put("default.conf", $"action-script {_hook}\n" + Block());
        CriuConfigurationChange change = Configuration().Remove();
        Assert.Equal($"action-script {_hook}\n", Read("default.conf"));
        string warning = Assert.Single(change.Warnings);
        Assert.Contains($"{ConfigFile("default.conf")}:1", warning);
        Assert.Contains("it stays", warning);
    }

    // ------------------------------------------------------------------ damaged markers

    [Theory]
    [InlineData("# BEGIN tcpfreeze (managed by 'tcpfreeze criu-config')\ntcp-established\n", "line 1 opens a tcpfreeze block but no '# END tcpfreeze' line closes it")]
    [InlineData("tcp-established\n# END tcpfreeze\n", "line 2 closes a tcpfreeze block that was never opened")]
    [InlineData("# BEGIN tcpfreeze\n# BEGIN tcpfreeze\n# END tcpfreeze\n", "line 2 opens a tcpfreeze block while the one opened on line 1 is not closed")]
    [InlineData("# BEGIN tcpfreeze\n# END tcpfreeze\nshell-job\n# BEGIN tcpfreeze\n# END tcpfreeze\n", "a second tcpfreeze block (line 4)")]
    public void Damaged_markers_are_refused_and_the_file_is_left_alone(string content, string problem)
    {
        Put("default.conf", content);
        Assert.Contains(problem, Assert.Throws<CriuConfigurationException>(() => Configuration().Write()).Message);
        Assert.Contains(problem, Assert.Throws<CriuConfigurationException>(() => Configuration().Remove()).Message);
        Assert.Equal(content, Read("default.conf"));
    }

    // ------------------------------------------------------------------ warnings

    [Fact]
    public void Writing_warns_when_the_other_file_names_the_hook_too()
    {
        Put("default.conf", $"shell-job\naction-script {_hook}\n");
        CriuConfigurationChange change = Configuration(CriuEngine.Runc).Write();
        Assert.Equal(CriuConfigurationOutcome.Created, change.Outcome);
        string warning = Assert.Single(change.Warnings);
        Assert.StartsWith($"{ConfigFile("default.conf")}:2 also names {_hook} as an action script", warning);
        Assert.Contains("twice", warning);
    }

    [Fact]
    public void Writing_warns_when_the_other_file_has_a_block_and_says_how_to_remove_it()
    {
        Configuration(CriuEngine.Criu).Write();
        CriuConfigurationChange change = Configuration(CriuEngine.Runc).Write();
        string warning = Assert.Single(change.Warnings);
        Assert.StartsWith($"{ConfigFile("default.conf")}:4 (its tcpfreeze block) also names", warning);
        Assert.Contains("tcpfreeze criu-config --remove --engine criu", warning);

        warning = Assert.Single(Configuration(CriuEngine.Criu).Write().Warnings);
        Assert.Contains("tcpfreeze criu-config --remove --engine runc", warning);
    }

    [Fact]
    public void Another_copy_of_the_hook_or_a_link_to_it_counts_as_the_hook()
    {
        string link = Path.Combine(_folder.Path, "freeze-hook-link");
        File.CreateSymbolicLink(link, _hook);
        Put("runc.conf", $"action-script /usr/bin/{CriuConfiguration.HookFileName}\naction-script {link}\n");
        IReadOnlyList<string> warnings = Configuration(CriuEngine.Criu).Write().Warnings;
        Assert.Equal(2, warnings.Count);
        Assert.StartsWith($"{ConfigFile("runc.conf")}:1 ", warnings[0]);
        Assert.StartsWith($"{ConfigFile("runc.conf")}:2 ", warnings[1]);
    }

    [Fact]
    public void Other_action_scripts_are_no_concern()
    {
        Put("runc.conf", "action-script /usr/local/bin/notify-migration\n");
        Put("default.conf", "action-script /usr/local/bin/other-hook\n");
        Assert.Empty(Configuration(CriuEngine.Criu).Write().Warnings);
    }

    [Fact]
    public void Writing_warns_when_the_file_names_the_hook_outside_the_block()
    {
        Put("default.conf", $"action-script={_hook}\n");
        string warning = Assert.Single(Configuration().Write().Warnings);
        Assert.StartsWith($"{ConfigFile("default.conf")}:1 already names {_hook} as an action script outside the tcpfreeze block", warning);
        Assert.Contains("twice", warning);
    }

    [Fact]
    public void Writing_default_conf_warns_when_runc_conf_keeps_another_lock_for_containers()
    {
        Put("runc.conf", "network-lock iptables\n");
        string warning = Assert.Single(Configuration(CriuEngine.Criu).Write().Warnings);
        Assert.StartsWith($"{ConfigFile("runc.conf")}:1 sets 'network-lock iptables'", warning);
    }

    [Fact]
    public void Writing_runc_conf_does_not_mind_a_lock_in_default_conf_which_it_overrides()
    {
        Put("default.conf", "network-lock iptables\n");
        Assert.Empty(Configuration(CriuEngine.Runc).Write().Warnings);
    }

    [Fact]
    public void Writing_warns_when_the_hook_is_not_installed_yet_but_still_writes()
    {
        string missing = Path.Combine(_folder.Path, "bin", CriuConfiguration.HookFileName);
        CriuConfigurationChange change = Configuration(hook: missing).Write();
        Assert.Equal(CriuConfigurationOutcome.Created, change.Outcome);
        Assert.StartsWith($"{missing} does not exist (yet)", Assert.Single(change.Warnings));
        Assert.Equal(Block(missing), Read("default.conf"));
    }
}
