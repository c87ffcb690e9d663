using TcpFreeze.Ebpf.Interop;
using Microsoft.Extensions.Logging;
using TcpFreeze.Tests.Infrastructure;
using TcpFreeze.Native;

namespace TcpFreeze.Tests;

/// <summary>Kernel refusals become exceptions that name the operation, the errno and the verifier's reasons.</summary>
[Trait("Privileges", "root")]
public sealed class BpfErrorTests
{
    [RootFact]
    public void A_program_the_verifier_rejects_carries_the_verifier_log()
    {
        // "exit" alone: R0 is never written, which the verifier refuses.
        var e = Assert.Throws<BpfLoadException>(() => BpfProgram.Load(BpfProgramType.Xdp, "bad_exit", [0x95UL]));
        Assert.Equal(Errnos.EACCES, e.Errno);
        Assert.Contains("R0 !read_ok", e.VerifierLog);
        Assert.Contains("load Xdp program 'bad_exit': EACCES", e.Message);
        Assert.Contains("R0 !read_ok", e.Message);
    }

    [RootFact]
    public void Libbpf_messages_reach_the_logger()
    {
        var logger = new ListLogger();
        LibbpfLog.SetLogger(logger);
        try
        {
            // Opening something that is not an ELF object makes libbpf complain.
            Assert.ThrowsAny<BpfException>(() => BpfObject.Open(new byte[64], "not-an-elf"));
            Assert.Contains(logger.Lines, l => l.Contains("libbpf:"));
        }
        finally
        {
            LibbpfLog.SetLogger(null);
        }
    }

    [RootFact]
    public void A_typed_view_with_a_wrong_key_size_fails_loudly_when_it_is_made()
    {
        using var programs = new PrivateTcpFreezePrograms("tcpfreeze-size-check", 16);
        var e = Assert.Throws<ArgumentException>(() => programs.Connections.Map.As<EndpointKey, FreezeEntry>());
        Assert.Contains("keys of 40 bytes but 20 bytes were given", e.Message);
    }

    [RootFact]
    public void Opening_a_pin_that_does_not_exist_says_so()
    {
        var e = Assert.Throws<BpfException>(() => BpfMap.OpenPinned("/sys/fs/bpf/tcpfreeze-no-such-pin"));
        Assert.Equal(Errnos.ENOENT, e.Errno);
        Assert.Contains("nothing is pinned there", e.Message);
    }

    [RootFact]
    public void Attaching_xdp_to_an_interface_index_that_does_not_exist_names_the_problem()
    {
        using BpfProgram pass = BpfProgram.Load(BpfProgramType.Xdp, "pass", [0x0000_0002_0000_00b7UL, 0x95UL]);
        using var network = TestNetwork.Create();
        var e = network.A.Run(() => Assert.ThrowsAny<BpfException>(() => Xdp.Attach(pass, 999_999)));
        Assert.Contains("999999", e.Message);
    }

    private sealed class ListLogger : ILogger
    {
        public List<string> Lines { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Lines)
                Lines.Add(formatter(state, exception));
        }
    }
}
