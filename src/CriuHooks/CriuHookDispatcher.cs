using System.Diagnostics;

namespace TcpFreeze.CriuHooks;

/// <summary>
/// Maps CRIU actions to handlers. Handlers for one action run in registration order;
/// the first non-zero result stops the rest and becomes the exit code. Actions with no
/// handler succeed. Failures a handler can meet (<see cref="TcpFreezeException"/>, which also
/// carries the library's BPF failures, <see cref="HookException"/>, and invalid-data, format, I/O,
/// access and argument exceptions) become one line in CRIU's log and exit code 1;
/// anything else is a bug and propagates (the hook's program still reports it in one line).
/// Other tools can embed this and add their own handlers next to TcpFreeze's.
/// </summary>
public sealed class CriuHookDispatcher
{
    private readonly Dictionary<CriuAction, List<CriuActionHandler>> _handlers = [];

    /// <summary>Adds a handler for <paramref name="action"/>.</summary>
    public CriuHookDispatcher On(CriuAction action, CriuActionHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        if (!_handlers.TryGetValue(action, out List<CriuActionHandler>? list))
            _handlers[action] = list = [];
        list.Add(handler);
        return this;
    }

    /// <summary>The actions that have handlers.</summary>
    public IReadOnlyCollection<CriuAction> Actions => _handlers.Keys;

    /// <summary>Runs the handlers of <paramref name="environment"/>'s action.</summary>
    public int Dispatch(CriuEnvironment environment, HookContext context)
    {
        ArgumentNullException.ThrowIfNull(environment);
        ArgumentNullException.ThrowIfNull(context);
        if (!_handlers.TryGetValue(environment.Action, out List<CriuActionHandler>? handlers))
            return 0;
        // One span and one duration per step; the library's own spans (attach, freeze, thaw) nest inside.
        using Activity? activity = HookTelemetry.Source.StartActivity($"tcpfreeze.hook.{environment.ActionName}");
        activity?.SetTag("criu.action", environment.ActionName);
        long started = Stopwatch.GetTimestamp();
        string? error = null;
        try
        {
            foreach (CriuActionHandler handler in handlers)
            {
                int code;
                try
                {
                    code = handler(environment, context);
                }
                catch (Exception e) when (e is TcpFreezeException or HookException or InvalidDataException or FormatException or IOException or UnauthorizedAccessException or ArgumentException)
                {
                    error = e.GetType().Name;
                    activity?.SetStatus(ActivityStatusCode.Error, e.Message);
                    ReportFailure(environment, context, CommandRemedies.Describe(e));
                    return 1;
                }
                if (code != 0)
                {
                    error = $"exit {code}";
                    activity?.SetStatus(ActivityStatusCode.Error, error);
                    return code;
                }
            }
            return 0;
        }
        finally
        {
            var tags = new TagList { { "criu.action", environment.ActionName } };
            if (error is not null)
            {
                tags.Add("error.type", error);
                activity?.SetTag("error.type", error);
            }
            HookTelemetry.StepDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, tags);
        }
    }

    /// <summary>
    /// One line that says the step failed and why, easy to grep in CRIU's log. A message
    /// can carry details on further lines (a verifier log): those follow, each prefixed
    /// too, so the failure line itself stays whole.
    /// </summary>
    private static void ReportFailure(CriuEnvironment environment, HookContext context, string message)
    {
        string[] lines = message.ReplaceLineEndings("\n").Split('\n');
        context.Info($"{environment.ActionName} failed: {lines[0].TrimEnd()}");
        foreach (string detail in lines.Skip(1))
            if (detail.Trim().Length > 0)
                context.Info($"  {detail.TrimEnd()}");
    }

    /// <summary>
    /// A dispatcher with TcpFreeze's handlers: freeze at pre-dump (completed at post-dump) and
    /// pre-restore, thaw at pre-resume; for a tree in a network namespace of its own, lock
    /// that namespace at network-lock and setup-namespaces, unlock it at network-unlock.
    /// </summary>
    public static CriuHookDispatcher CreateTcpFreeze()
        => new CriuHookDispatcher()
            .On(CriuAction.PreDump, TcpFreezeHook.PreDump)
            .On(CriuAction.PostDump, TcpFreezeHook.PostDump)
            .On(CriuAction.PreRestore, TcpFreezeHook.PreRestore)
            .On(CriuAction.SetupNamespaces, TcpFreezeHook.SetupNamespaces)
            .On(CriuAction.PreResume, TcpFreezeHook.PreResume)
            .On(CriuAction.PostResume, TcpFreezeHook.PostResume)
            .On(CriuAction.NetworkLock, TcpFreezeHook.NetworkLock)
            .On(CriuAction.NetworkUnlock, TcpFreezeHook.NetworkUnlock);
}
