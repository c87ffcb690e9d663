using System.Text.RegularExpressions;
using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.Install;

/// <summary>
/// scripts/install.sh, into root folders of the tests' own (DESTDIR style, the way a package build uses it): it
/// installs native commands that run without .NET, the hook's settings, CRIU's configuration and a valid systemd
/// unit, and --uninstall leaves the root exactly as it was, files of others included.
/// </summary>
/// <remarks>In the "criu" collection: the installer publishes the hook from this checkout, as the CRIU fixture does,
/// and two publishes of one project must not run at once.</remarks>
[Collection("criu")]
public sealed partial class InstallerTests(InstalledOnce installed) : IClassFixture<InstalledOnce>
{
    private const string Bin = "usr/local/bin";
    private const string UnitPath = "etc/systemd/system/tcpfreeze-attach.service";
    private const string AgentUnitPath = "etc/systemd/system/tcpfreeze-agent.service";
    private const string SettingsPath = "etc/tcpfreeze/criu-hook.conf";
    private const string ManifestPath = "usr/local/share/tcpfreeze/install-manifest";

    // No .NET at all: a NativeAOT binary needs no runtime, an app host would fail to find one.
    private static readonly Dictionary<string, string> NoDotnet = new() { ["DOTNET_ROOT"] = "/nonexistent", ["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin" };

    [GeneratedRegex(@"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?\+[0-9a-f]{40}$")]
    private static partial Regex VersionWithCommit();

    [Fact]
    public void Installer_publishes_both_commands_natively_they_run_without_dotnet_and_uninstall_leaves_an_empty_root()
    {
        installed.AssertInstalled();
        string bin = Path.Combine(installed.Root, Bin);
        Assert.Equal(Installer.Binaries.Order(), Directory.GetFiles(bin).Select(Path.GetFileName).Order());

        (int code, string output, string error) = Run.Capture(Path.Combine(bin, "tcpfreeze"), ["--version"], NoDotnet, TimeSpan.FromSeconds(30));
        Assert.True(code == 0, $"tcpfreeze --version exited {code}: {error}");
        Assert.Matches(VersionWithCommit(), output.Trim());
        (code, output, error) = Run.Capture(Path.Combine(bin, "tcpfreeze"), ["--help"], NoDotnet, TimeSpan.FromSeconds(30));
        Assert.True(code == 0 && output.Contains("criu-config", StringComparison.Ordinal), $"tcpfreeze --help exited {code}: {error}{output}");
        (code, _, error) = Run.Capture(Path.Combine(bin, "tcpfreeze-criu-hook"), ["--help"], NoDotnet, TimeSpan.FromSeconds(30));
        Assert.True(code == 0 && error.Contains("CRIU runs it as an action script", StringComparison.Ordinal), $"tcpfreeze-criu-hook --help exited {code}: {error}");
        // Without --with-systemd the hook is left to detach after the last thaw, as it does by default.
        Assert.False(ReadSettings(installed.Root).KeepAttached);

        Installer.Succeeds("--uninstall", "--root", installed.Root);

        Assert.Empty(Installer.Snapshot(installed.Root));
    }

    [Fact]
    public void Install_with_criu_config_and_systemd_then_uninstall_leaves_the_root_exactly_as_it_was()
    {
        using var folder = new TempDirectory();
        string root = folder.Path;
        // Files of the operator's that the install must leave alone: CRIU's configuration and another command.
        Directory.CreateDirectory(Path.Combine(root, "etc/criu"));
        File.WriteAllText(Path.Combine(root, "etc/criu/runc.conf"), "log-file /var/log/criu-own.log\n");
        Directory.CreateDirectory(Path.Combine(root, Bin));
        File.WriteAllText(Path.Combine(root, Bin, "someone-elses-tool"), "#!/bin/sh\n");
        SortedDictionary<string, string> before = Installer.Snapshot(root);

        Installer.Succeeds("--root", root, "--from", installed.Published, "--with-criu-config=runc", "--with-systemd");

        // The settings: what the hook reads, with keep-attached on for the unit's programs.
        HookSettings settings = ReadSettings(root);
        Assert.True(settings.KeepAttached);
        Assert.Equal(Lease.Default, settings.Lease);
        // CRIU's configuration: the operator's line first, then the block naming the installed hook.
        string[] runc = File.ReadAllLines(Path.Combine(root, "etc/criu/runc.conf"));
        Assert.Equal("log-file /var/log/criu-own.log", runc[0]);
        Assert.Contains("network-lock skip", runc);
        Assert.Contains("action-script /usr/local/bin/tcpfreeze-criu-hook", runc);
        // The unit attaches at boot with the installed command, on the hook's pin root, and is valid for systemd; its stop
        // detaches only when nothing is frozen (a stop during a migration must not thaw the dump's freeze).
        string unit = File.ReadAllText(Path.Combine(root, UnitPath));
        Assert.Contains("ExecStart=/usr/local/bin/tcpfreeze --hook-settings /etc/tcpfreeze/criu-hook.conf attach\n", unit, StringComparison.Ordinal);
        Assert.Contains("ExecStop=/usr/local/bin/tcpfreeze --hook-settings /etc/tcpfreeze/criu-hook.conf detach --if-idle\n", unit, StringComparison.Ordinal);
        VerifyUnit(unit, root);
        string agent = File.ReadAllText(Path.Combine(root, AgentUnitPath));
        Assert.Contains("ExecStart=/usr/local/bin/tcpfreeze-criu-hook-engine --agent\n", agent, StringComparison.Ordinal);
        VerifyUnit(agent, root);
        Assert.True(File.Exists(Path.Combine(root, ManifestPath)));

        Installer.Succeeds("--uninstall", "--root", root);

        Assert.Equal(before, Installer.Snapshot(root));
    }

    [Fact]
    public void Uninstall_keeps_settings_changed_since_the_install_and_purge_removes_them()
    {
        using var folder = new TempDirectory();
        foreach (bool purge in new[] { false, true })
        {
            string root = Path.Combine(folder.Path, purge ? "purge" : "keep");
            Directory.CreateDirectory(root);
            Installer.Succeeds("--root", root, "--from", installed.Published);
            string settings = Path.Combine(root, SettingsPath);
            File.AppendAllText(settings, "lease-seconds = 300\n");

            (int code, string output, string error) = Installer.Run(["--uninstall", "--root", root, .. purge ? ["--purge"] : Array.Empty<string>()]);

            Assert.True(code == 0, $"uninstall exited {code}: {error}{output}");
            if (purge)
            {
                Assert.Empty(Installer.Snapshot(root));
            }
            else
            {
                Assert.Contains($"kept {settings}", output, StringComparison.Ordinal);
                Assert.Equal(["/etc", "/etc/tcpfreeze", "/" + SettingsPath], Installer.Snapshot(root).Keys);
            }
        }
    }

    [Fact]
    public void Installing_again_updates_in_place_keeps_the_settings_and_uninstall_still_removes_everything()
    {
        using var folder = new TempDirectory();
        string root = folder.Path;
        Installer.Succeeds("--root", root, "--from", installed.Published);
        string settingsBefore = File.ReadAllText(Path.Combine(root, SettingsPath));

        (int code, string output, string error) = Installer.Run("--root", root, "--from", installed.Published, "--with-systemd", "--with-criu-config");

        Assert.True(code == 0, $"second install exited {code}: {error}{output}");
        Assert.Equal(settingsBefore, File.ReadAllText(Path.Combine(root, SettingsPath)));
        Assert.Contains("keep-attached = true", output, StringComparison.Ordinal); // the warning that the kept file lacks it
        Assert.True(File.Exists(Path.Combine(root, UnitPath)));
        Assert.Contains("action-script /usr/local/bin/tcpfreeze-criu-hook", File.ReadAllLines(Path.Combine(root, "etc/criu/default.conf")));

        Installer.Succeeds("--uninstall", "--root", root);

        Assert.Empty(Installer.Snapshot(root));
    }

    [Fact]
    public void Install_refuses_to_replace_a_tcpfreeze_command_it_did_not_install_and_changes_nothing()
    {
        using var folder = new TempDirectory();
        string root = folder.Path;
        Directory.CreateDirectory(Path.Combine(root, Bin));
        File.WriteAllText(Path.Combine(root, Bin, "tcpfreeze"), "#!/bin/sh\necho an older tcpfreeze\n");
        SortedDictionary<string, string> before = Installer.Snapshot(root);

        (int code, string output, string error) = Installer.Run("--root", root, "--from", installed.Published);

        Assert.True(code != 0, $"install over a foreign tcpfreeze exited 0: {output}");
        Assert.Contains("was not installed by this script", error, StringComparison.Ordinal);
        Assert.Equal(before, Installer.Snapshot(root));
    }

    [Fact]
    public void Uninstall_with_nothing_installed_fails_and_says_where_it_looked()
    {
        using var folder = new TempDirectory();

        (int code, _, string error) = Installer.Run("--uninstall", "--root", folder.Path);

        Assert.True(code != 0);
        Assert.Contains($"{folder.Path}/{ManifestPath}", error, StringComparison.Ordinal);
    }

    private static HookSettings ReadSettings(string root)
    {
        string path = Path.Combine(root, SettingsPath);
        return HookSettings.Parse(File.ReadAllLines(path), path);
    }

    /// <summary>
    /// systemd-analyze verify on a copy of the unit whose commands point into the root (systemd checks that they
    /// exist): no complaint at all, not even an unknown key, which systemd only warns about.
    /// </summary>
    private static void VerifyUnit(string unit, string root)
    {
        using var folder = new TempDirectory();
        string copy = folder.Write(unit.Contains("--agent", StringComparison.Ordinal) ? "tcpfreeze-agent.service" : "tcpfreeze-attach.service",
            unit.Replace("=/usr/local/bin/", $"={root}/{Bin}/", StringComparison.Ordinal));
        (int code, string output, string error) = Run.Capture("systemd-analyze", ["verify", copy], null, TimeSpan.FromSeconds(60));
        Assert.True(code == 0 && error.Length == 0 && output.Length == 0, $"systemd-analyze verify exited {code}: {error}{output}");
    }
}
