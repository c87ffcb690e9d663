using TcpFreeze.Ebpf.Interop;
using TcpFreeze.CriuHooks;
using TcpFreeze.Native;

namespace TcpFreeze.Tests.CriuHookUnit;

public sealed class CriuHookDispatcherTests
{
    private readonly StringWriter _log = new();

    private HookContext Context() => new(new HookSettings(), _log, criuPid: 1, executablePath: null);

    private static CriuEnvironment Step(CriuAction action, string name, string? images = null, int? pid = null) => new(action, name, images, pid);

    private string[] LogLines => _log.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);

    [Fact]
    public void Handlers_run_in_registration_order()
    {
        var calls = new List<string>();
        var dispatcher = new CriuHookDispatcher()
            .On(CriuAction.PreDump, (_, _) => { calls.Add("first"); return 0; })
            .On(CriuAction.PostDump, (_, _) => { calls.Add("other action"); return 0; })
            .On(CriuAction.PreDump, (_, _) => { calls.Add("second"); return 0; })
            .On(CriuAction.PreDump, (_, _) => { calls.Add("third"); return 0; });
        Assert.Equal(0, dispatcher.Dispatch(Step(CriuAction.PreDump, "pre-dump"), Context()));
        Assert.Equal(["first", "second", "third"], calls);
    }

    [Fact]
    public void The_first_non_zero_result_stops_the_rest_and_is_the_exit_code()
    {
        var calls = new List<string>();
        var dispatcher = new CriuHookDispatcher()
            .On(CriuAction.PreRestore, (_, _) => { calls.Add("first"); return 0; })
            .On(CriuAction.PreRestore, (_, _) => { calls.Add("second"); return 3; })
            .On(CriuAction.PreRestore, (_, _) => { calls.Add("third"); return 0; });
        Assert.Equal(3, dispatcher.Dispatch(Step(CriuAction.PreRestore, "pre-restore"), Context()));
        Assert.Equal(["first", "second"], calls);
    }

    [Fact]
    public void Handlers_get_the_environment_and_context_they_were_dispatched_with()
    {
        CriuEnvironment step = Step(CriuAction.PreDump, "pre-dump", "/proc/1/fd/3", 99);
        HookContext context = Context();
        (CriuEnvironment, HookContext)? seen = null;
        new CriuHookDispatcher().On(CriuAction.PreDump, (e, c) => { seen = (e, c); return 0; }).Dispatch(step, context);
        Assert.Same(step, seen?.Item1);
        Assert.Same(context, seen?.Item2);
    }

    [Theory]
    [InlineData(CriuAction.PostResume, "post-resume")]
    [InlineData(CriuAction.Unknown, "orphan-pts-master")]
    public void An_action_without_handlers_succeeds_without_calling_anything(CriuAction action, string name)
    {
        bool called = false;
        var dispatcher = new CriuHookDispatcher().On(CriuAction.PreDump, (_, _) => { called = true; return 1; });
        Assert.Equal(0, dispatcher.Dispatch(Step(action, name), Context()));
        Assert.False(called);
        Assert.Empty(_log.ToString());
    }

    public static TheoryData<Exception> HandlerFailures() => new()
    {
        new TcpFreezeException("freeze 3 connections", "the map is full"),
        new InvalidDataException("tcpfreeze-manifest.json is corrupt: 'x' has no port"),
        new FormatException("CRTOOLS_INIT_PID is 'abc', not a positive process id."),
        new HookException("CRTOOLS_IMAGE_DIR is not set at pre-dump; there is nowhere to write the manifest"),
        new TcpFreezeException(new BpfException("attach XDP to veth0", Errnos.EPERM)),
        new IOException("disk full"),
        new UnauthorizedAccessException("access denied"),
    };

    [Theory]
    [MemberData(nameof(HandlerFailures))]
    public void A_failing_handler_gives_exit_1_one_log_line_and_stops_the_rest(Exception failure)
    {
        bool laterCalled = false;
        var dispatcher = new CriuHookDispatcher()
            .On(CriuAction.PreDump, (_, _) => throw failure)
            .On(CriuAction.PreDump, (_, _) => { laterCalled = true; return 0; });
        Assert.Equal(1, dispatcher.Dispatch(Step(CriuAction.PreDump, "pre-dump"), Context()));
        Assert.False(laterCalled);
        Assert.Equal([$"tcpfreeze-hook: pre-dump failed: {failure.Message}"], LogLines);
    }

    [Fact]
    public void A_multi_line_message_keeps_the_failure_on_one_line_and_prefixes_the_details()
    {
        var dispatcher = new CriuHookDispatcher()
            .On(CriuAction.PreRestore, (_, _) => throw new HookException("load tcpfreeze.bpf.o: EINVAL; the verifier log follows:\r\n0: (b7) r0 = 0\n\n1: (95) exit\n"));
        Assert.Equal(1, dispatcher.Dispatch(Step(CriuAction.PreRestore, "pre-restore"), Context()));
        Assert.Equal(
            [
                "tcpfreeze-hook: pre-restore failed: load tcpfreeze.bpf.o: EINVAL; the verifier log follows:",
                "tcpfreeze-hook:   0: (b7) r0 = 0",
                "tcpfreeze-hook:   1: (95) exit",
            ],
            LogLines);
    }

    [Fact]
    public void An_unexpected_exception_is_a_bug_and_propagates()
    {
        var dispatcher = new CriuHookDispatcher().On(CriuAction.PreDump, (_, _) => throw new InvalidOperationException("bug"));
        Assert.Throws<InvalidOperationException>(() => dispatcher.Dispatch(Step(CriuAction.PreDump, "pre-dump"), Context()));
    }

    [Fact]
    public void The_TcpFreeze_dispatcher_handles_exactly_pre_dump_post_dump_pre_restore_setup_namespaces_pre_and_post_resume_and_the_network_lock_steps()
    {
        CriuHookDispatcher dispatcher = CriuHookDispatcher.CreateTcpFreeze();
        Assert.Equal(
            new HashSet<CriuAction>
            {
                CriuAction.PreDump, CriuAction.PostDump, CriuAction.PreRestore, CriuAction.SetupNamespaces, CriuAction.PreResume, CriuAction.PostResume,
                CriuAction.NetworkLock, CriuAction.NetworkUnlock,
            },
            dispatcher.Actions.ToHashSet());
    }

    [Fact]
    public void Null_arguments_are_refused()
    {
        var dispatcher = new CriuHookDispatcher();
        Assert.Throws<ArgumentNullException>(() => dispatcher.On(CriuAction.PreDump, null!));
        Assert.Throws<ArgumentNullException>(() => dispatcher.Dispatch(null!, Context()));
        Assert.Throws<ArgumentNullException>(() => dispatcher.Dispatch(Step(CriuAction.PreDump, "pre-dump"), null!));
    }
}
