using Microsoft.Extensions.Logging;

namespace TcpFreeze;

/// <summary>
/// Wraps a user's logger so that a call made on a namespace thread (<see cref="NetworkNamespace"/>'s
/// remarks) is queued and made later on the caller's thread: a logging provider that starts a
/// thread or queues thread-pool work must never do it from inside another network namespace.
/// </summary>
internal sealed class DeferringLogger(ILogger inner) : ILogger
{
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull
        => NetworkNamespace.DeferredOnThisThread is null ? inner.BeginScope(state) : null;

    // On a namespace thread the answer would need user code: say yes, and let the replayed call decide.
    public bool IsEnabled(LogLevel logLevel) => NetworkNamespace.DeferredOnThisThread is not null || inner.IsEnabled(logLevel);

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (NetworkNamespace.DeferredOnThisThread is { } queue)
            queue.Add(() => inner.Log(logLevel, eventId, state, exception, formatter));
        else
            inner.Log(logLevel, eventId, state, exception, formatter);
    }
}
