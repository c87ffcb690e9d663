using System.Diagnostics;
using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.CriuHookUnit;

/// <summary>
/// Telling a <c>criu pre-dump</c> round from a real dump by the CRIU process's command line, read as
/// CRIU's getopt_long reads it, and the dump handlers doing nothing in such a round.
/// </summary>
public sealed class CriuCommandLineTests
{
    private static CriuCommandLine Parse(string line) => CriuCommandLine.Parse(line.Split(' '));

    [Theory]
    [InlineData("criu pre-dump -t 42 -D /images --track-mem")]
    [InlineData("/usr/sbin/criu -t 42 -D /images pre-dump")]
    [InlineData("criu --tree 42 --images-dir /images --leave-running pre-dump")]
    [InlineData("criu -vvvv -o pre.log pre-dump -t 42")]
    [InlineData("criu --tls pre-dump -t 42")]
    [InlineData("criu --page-server --address 198.18.0.2 --port 27 pre-dump -t 42")]
    [InlineData("criu -- pre-dump")]
    public void A_pre_dump_command_is_a_pre_dump_round_wherever_the_options_are(string line)
    {
        CriuCommandLine parsed = Parse(line);
        Assert.Equal("pre-dump", parsed.Command);
        Assert.True(parsed.IsPreDumpRound);
    }

    [Theory]
    [InlineData("criu dump -t 42 -D /images --prev-images-dir ../pre-dump --track-mem", "dump")]
    [InlineData("criu -D pre-dump dump -t 42", "dump")]
    [InlineData("criu -Dpre-dump dump -t 42", "dump")]
    [InlineData("criu --images-dir=pre-dump dump -t 42", "dump")]
    [InlineData("criu --images pre-dump dump -t 42", "dump")]
    [InlineData("criu -v4 --action-script pre-dump --log-file pre-dump dump", "dump")]
    [InlineData("criu dump -t 42 --network-lock skip --lazy-pages --address 198.18.0.1 --port 27000", "dump")]
    [InlineData("criu restore -D pre-dump -d --lazy-pages", "restore")]
    [InlineData("criu lazy-pages --page-server --address 198.18.0.1 --port 27000 -D /images", "lazy-pages")]
    [InlineData("criu swrk 3", "swrk")]
    public void Option_values_never_count_as_the_command(string line, string command)
    {
        CriuCommandLine parsed = Parse(line);
        Assert.Equal(command, parsed.Command);
        Assert.False(parsed.IsPreDumpRound);
    }

    [Fact]
    public void A_command_line_without_a_command_has_none()
    {
        Assert.Null(Parse("criu").Command);
        Assert.Null(Parse("criu -t 42 -D").Command);
    }

    [Theory]
    [InlineData("criu dump -t 42 --lazy-pages --port 27000", true)]
    [InlineData("criu restore --lazy -D /images", true)]
    [InlineData("criu dump -t 42 --port 27000", false)]
    [InlineData("criu dump --action-script --lazy-pages -t 42", false)]
    public void Lazy_pages_is_recognised_as_an_option_only(string line, bool lazy)
        => Assert.Equal(lazy, Parse(line).LazyPages);

    [Fact]
    public void A_process_that_cannot_be_read_has_no_command_line()
        => Assert.Null(CriuCommandLine.Read(int.MaxValue));

    /// <summary>
    /// The handlers, run by a parent process whose command line reads as CRIU's "-s pre-dump -t 1"
    /// (sh -s reads commands from stdin, and -s is also CRIU's --leave-stopped): pre-dump freezes
    /// nothing and writes no manifest, and post-dump, which finds none, still succeeds. Neither needs
    /// root, because neither gets as far as attaching.
    /// </summary>
    [Theory]
    [InlineData("pre-dump")]
    [InlineData("post-dump")]
    public void In_a_pre_dump_round_the_dump_steps_freeze_nothing_and_succeed(string action)
    {
        using var images = new TempDirectory();
        var info = new ProcessStartInfo("/bin/sh") { RedirectStandardInput = true, UseShellExecute = false };
        foreach (string a in new[] { "-s", "pre-dump", "-t", "1" })
            info.ArgumentList.Add(a);
        using Process fakeCriu = Process.Start(info)!;
        try
        {
            Assert.True(CriuCommandLine.Read(fakeCriu.Id)?.IsPreDumpRound, "the stand-in's command line does not read as a pre-dump");
            var log = new StringWriter();
            var settings = new HookSettings { PinRoot = $"/sys/fs/bpf/tcpfreeze-unit-{Guid.NewGuid():N}" };
            CriuEnvironment step = CriuEnvironment.Parse(new Dictionary<string, string?>
            {
                ["CRTOOLS_SCRIPT_ACTION"] = action,
                ["CRTOOLS_IMAGE_DIR"] = images.Path,
                ["CRTOOLS_INIT_PID"] = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture),
            });

            int code = CriuHookDispatcher.CreateTcpFreeze().Dispatch(step, new HookContext(settings, log, fakeCriu.Id, executablePath: null));

            Assert.Equal(0, code);
            Assert.Contains($"tcpfreeze-hook: {action}: CRIU (PID {fakeCriu.Id}) runs `criu pre-dump`", log.ToString());
            Assert.Empty(Directory.GetFileSystemEntries(images.Path));
            Assert.False(Directory.Exists(settings.PinRoot));
        }
        finally
        {
            fakeCriu.StandardInput.Close();
            if (!fakeCriu.WaitForExit(5000))
                fakeCriu.Kill();
        }
    }
}
