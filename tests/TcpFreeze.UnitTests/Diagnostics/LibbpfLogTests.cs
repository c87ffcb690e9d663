using TcpFreeze.Ebpf.Interop;
using Microsoft.Extensions.Logging;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.Diagnostics;

/// <summary>
/// libbpf's one process-wide print callback: each message goes to the logger of the scope it was
/// logged in, never to whichever logger was set last, at the right level and with one prefix.
/// </summary>
public sealed class LibbpfLogTests
{
    [Fact]
    public void A_message_goes_to_the_innermost_scope_and_a_closed_scope_gives_the_route_back()
    {
        using var outer = new RecordingLoggerFactory();
        using var inner = new RecordingLoggerFactory();
        using (LibbpfLog.Route(outer.CreateLogger(LibbpfLog.Category)))
        {
            LibbpfLog.Dispatch(0, "libbpf: first\n");
            using (LibbpfLog.Route(inner.CreateLogger(LibbpfLog.Category)))
                LibbpfLog.Dispatch(0, "libbpf: second\n");
            LibbpfLog.Dispatch(0, "libbpf: third\n");
        }
        Assert.Equal(["libbpf: first", "libbpf: third"], outer.Records.Select(r => r.Message));
        Assert.Equal(["libbpf: second"], inner.Records.Select(r => r.Message));
    }

    [Fact]
    public void Setting_the_process_default_does_not_take_messages_from_a_scope()
    {
        using var scoped = new RecordingLoggerFactory();
        using var latest = new RecordingLoggerFactory();
        using (LibbpfLog.Route(scoped.CreateLogger(LibbpfLog.Category)))
        {
            // What a second freezer (or any library) setting its logger last used to do.
            LibbpfLog.SetLogger(latest.CreateLogger(LibbpfLog.Category));
            try
            {
                LibbpfLog.Dispatch(0, "libbpf: mine\n");
            }
            finally
            {
                LibbpfLog.SetLogger(null);
            }
        }
        Assert.Equal(["libbpf: mine"], scoped.Records.Select(r => r.Message));
        Assert.DoesNotContain(latest.Records, r => r.Message == "libbpf: mine");
    }

    [Fact]
    public void Concurrent_flows_each_keep_their_own_route()
    {
        var loggers = Enumerable.Range(0, 4).Select(_ => new RecordingLoggerFactory()).ToArray();
        Parallel.For(0, loggers.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            using (LibbpfLog.Route(loggers[i].CreateLogger(LibbpfLog.Category)))
                for (int n = 0; n < 200; n++)
                    LibbpfLog.Dispatch(0, $"libbpf: flow {i} message {n}\n");
        });
        for (int i = 0; i < loggers.Length; i++)
        {
            Assert.Equal(200, loggers[i].Records.Count);
            Assert.All(loggers[i].Records, r => Assert.StartsWith($"libbpf: flow {i} ", r.Message));
        }
    }

    [Fact]
    public void A_null_logger_opens_no_scope()
    {
        using var outer = new RecordingLoggerFactory();
        using (LibbpfLog.Route(outer.CreateLogger(LibbpfLog.Category)))
        using (LibbpfLog.Route(null))
            LibbpfLog.Dispatch(0, "libbpf: still outer\n");
        Assert.Equal(["libbpf: still outer"], outer.Records.Select(r => r.Message));
    }

    [Theory]
    [InlineData("libbpf: Kernel error message: Parent Qdisc doesn't exists\n")]
    [InlineData("libbpf: Kernel error message: Cannot find specified filter chain\n")]
    [InlineData("libbpf: Kernel error message: Exclusivity flag on, cannot modify\n")]
    [InlineData("libbpf: Kernel error message: Underlying driver does not support XDP in native mode\n")]
    public void The_kernels_answers_to_expected_probe_failures_are_debug_not_warnings(string text)
    {
        using var logs = new RecordingLoggerFactory();
        using (LibbpfLog.Route(logs.CreateLogger(LibbpfLog.Category)))
            LibbpfLog.Dispatch(0, text);
        LogRecord record = Assert.Single(logs.Records);
        Assert.Equal(LogLevel.Debug, record.Level);
        Assert.Equal("libbpf: " + text["libbpf: ".Length..].TrimEnd(), record.Message);
    }

    [Theory]
    [InlineData(0, LogLevel.Warning)]
    [InlineData(1, LogLevel.Information)]
    [InlineData(2, LogLevel.Debug)]
    public void Other_messages_keep_libbpfs_level_and_carry_one_prefix(int level, LogLevel expected)
    {
        using var logs = new RecordingLoggerFactory();
        using (LibbpfLog.Route(logs.CreateLogger(LibbpfLog.Category)))
        {
            LibbpfLog.Dispatch(level, "libbpf: failed to find BTF for extern 'x'\n");
            LibbpfLog.Dispatch(level, "a message without libbpf's prefix\n");
        }
        Assert.Equal([expected, expected], logs.Records.Select(r => r.Level));
        Assert.Equal(["libbpf: failed to find BTF for extern 'x'", "libbpf: a message without libbpf's prefix"], logs.Records.Select(r => r.Message));
        Assert.All(logs.Records, r => Assert.DoesNotContain("libbpf: libbpf:", r.Message));
    }

    [Fact]
    public void The_freezer_options_give_each_category_its_own_logger_and_none_without_a_factory()
    {
        using var factory = new RecordingLoggerFactory();
        var options = new FreezerOptions { LoggerFactory = factory };
        options.CreateLogger(LibbpfLog.Category)!.LogWarning("from libbpf");
        options.CreateLogger(FreezerOptions.LogCategory)!.LogWarning("from TcpFreeze");
        Assert.Equal([LibbpfLog.Category, FreezerOptions.LogCategory], factory.Records.Select(r => r.Category));

        Assert.Null(new FreezerOptions().CreateLogger(LibbpfLog.Category));
    }
}
