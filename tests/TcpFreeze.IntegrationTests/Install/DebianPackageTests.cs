using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.Install;

/// <summary>
/// scripts/package-deb.sh: a package dpkg installs and purges, with the binaries the installer published once.
/// Installs into this machine's /usr, /lib and /etc (root, as CI is), and purges again.
/// </summary>
public sealed partial class InstallerTests
{
    private static readonly string[] PackagedFiles =
    [
        "/usr/bin/tcpfreeze", "/usr/bin/tcpfreeze-criu-hook", "/usr/bin/tcpfreeze-criu-hook-engine",
        "/lib/systemd/system/tcpfreeze-attach.service", "/lib/systemd/system/tcpfreeze-agent.service",
        "/usr/share/bash-completion/completions/tcpfreeze", "/usr/share/man/man8/tcpfreeze.8.gz",
    ];

    [RootFact]
    [Trait("Privileges", "root")]
    public void The_debian_package_installs_with_dpkg_keeps_its_settings_as_a_conffile_and_purges_to_nothing()
    {
        installed.AssertInstalled();
        Assert.False(File.Exists("/usr/bin/tcpfreeze"), "a tcpfreeze is installed on this machine already; the test would replace it");
        using var output = new TempDirectory();
        (int code, string stdout, string error) = Run.Capture("bash", [Path.Combine(Repository.Root, "scripts", "package-deb.sh"), "--from", installed.Published, "--out", output.Path],
            null, TimeSpan.FromMinutes(5));
        Assert.True(code == 0, $"package-deb.sh exited {code}: {error}{stdout}");
        string deb = stdout.Trim();
        Assert.Matches(@"/tcpfreeze_0\.1\.0\+git\d{14}\.[0-9a-f]{12}_[a-z0-9]+\.deb$", deb);
        Assert.Equal("/etc/tcpfreeze/criu-hook.conf", ReadControl(deb, "conffiles").Trim());

        try
        {
            (code, stdout, error) = Run.Capture("dpkg", ["-i", deb], null, TimeSpan.FromMinutes(2));
            Assert.True(code == 0, $"dpkg -i exited {code}: {error}{stdout}");
            foreach (string file in PackagedFiles)
                Assert.True(File.Exists(file), $"{file} was not installed");
            (code, string version, _) = Run.Capture("/usr/bin/tcpfreeze", ["--version"], NoDotnet, TimeSpan.FromSeconds(30));
            Assert.True(code == 0 && version.Length > 0, $"the packaged tcpfreeze does not run ({code})");
            Assert.True(ReadSettings("/").KeepAttached, "the package's settings should keep the programs attached (the boot-time attach and the agent)");
            Assert.Contains("ExecStart=/usr/bin/tcpfreeze-criu-hook-engine --agent", File.ReadAllText("/lib/systemd/system/tcpfreeze-agent.service"));

            // An operator's change to the conffile survives a plain removal; purge removes it.
            File.AppendAllText("/etc/tcpfreeze/criu-hook.conf", "lease-seconds = 300\n");
            Run.Checked("dpkg", "--remove", "tcpfreeze");
            Assert.False(File.Exists("/usr/bin/tcpfreeze"), "dpkg --remove left the command");
            Assert.Contains("lease-seconds = 300", File.ReadAllText("/etc/tcpfreeze/criu-hook.conf"));
        }
        finally
        {
            Run.Capture("dpkg", ["--purge", "tcpfreeze"], null, TimeSpan.FromMinutes(2));
        }
        foreach (string file in PackagedFiles)
            Assert.False(File.Exists(file), $"{file} is left after the purge");
        Assert.False(Directory.Exists("/etc/tcpfreeze"), "/etc/tcpfreeze is left after the purge");
    }

    private static string ReadControl(string deb, string member)
    {
        using var folder = new TempDirectory();
        Run.Checked("dpkg-deb", "--control", deb, folder.Path);
        return File.ReadAllText(Path.Combine(folder.Path, member));
    }
}
