using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.Install;

/// <summary>
/// scripts/install.sh installs the bash completion and the man page that the installed command writes, where
/// bash-completion and man look for them, and --uninstall removes them. The commands come from --from: a tcpfreeze that
/// runs this build's TcpFreeze.Cli.dll (what it writes is what counts here, not how it was compiled; InstallerTests
/// covers the NativeAOT publish) and stand-ins for the hook's binaries.
/// </summary>
public sealed class InstalledReferenceTests
{
    [Fact]
    public void Install_puts_the_commands_own_completion_and_man_page_in_place_and_uninstall_removes_them()
    {
        using var folder = new TempDirectory();
        string from = Path.Combine(folder.Path, "from"), root = Path.Combine(folder.Path, "root");
        Directory.CreateDirectory(from);
        Directory.CreateDirectory(root);
        string cli = Path.Combine(AppContext.BaseDirectory, "TcpFreeze.Cli.dll");
        File.WriteAllText(Path.Combine(from, "tcpfreeze"), $"#!/bin/sh\nexec dotnet '{cli}' \"$@\"\n");
        foreach (string name in Installer.Binaries.Where(n => n != "tcpfreeze"))
            File.WriteAllText(Path.Combine(from, name), "#!/bin/sh\nexit 0\n");
        foreach (string name in Installer.Binaries)
            File.SetUnixFileMode(Path.Combine(from, name), (UnixFileMode)0b111_101_101);

        Installer.Succeeds("--root", root, "--from", from);

        string completion = Path.Combine(root, "usr/local/share/bash-completion/completions/tcpfreeze");
        string manPage = Path.Combine(root, "usr/local/share/man/man8/tcpfreeze.8");
        Assert.Equal(TcpFreezeCommand.Run("completion", "bash").Succeeds().Output, File.ReadAllText(completion));
        Assert.Equal(TcpFreezeCommand.Run("manpage").Succeeds().Output, File.ReadAllText(manPage));
        Assert.Contains("complete -F _tcpfreeze tcpfreeze", File.ReadAllText(completion));
        Assert.Contains(".SS criu-config", File.ReadAllText(manPage));

        Installer.Succeeds("--uninstall", "--root", root);
        Assert.False(File.Exists(completion));
        Assert.False(File.Exists(manPage));
        Assert.Empty(Installer.Snapshot(root));
    }
}
