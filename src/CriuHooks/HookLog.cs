using Microsoft.Extensions.Logging;

namespace TcpFreeze.CriuHooks;

/// <summary>
/// The hook's logging: an <see cref="ILoggerFactory"/> whose loggers write each message as one
/// line, "tcpfreeze-hook: MESSAGE", to a <see cref="TextWriter"/> (stderr, which CRIU copies into
/// its log). Every category goes there (the hook's own, <see cref="Category"/>, TcpFreeze's and
/// libbpf's), from <see cref="LogLevel.Information"/> up unless told otherwise: libbpf's expected
/// probe failures are Debug and stay out of CRIU's log.
/// </summary>
public sealed class HookLoggerFactory(TextWriter writer, LogLevel minimum = LogLevel.Information) : ILoggerFactory
{
    /// <summary>The category of the hook's own messages.</summary>
    public const string Category = "TcpFreeze.CriuHooks";

    /// <summary>The prefix that makes the hook's lines easy to find in CRIU's log.</summary>
    public const string Prefix = "tcpfreeze-hook: ";

    private readonly Lock _lock = new();

    /// <inheritdoc/>
    public ILogger CreateLogger(string categoryName) => new LineLogger(this);

    /// <summary>Not supported: every logger of this factory writes to its one writer.</summary>
    public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException("the hook's logger factory writes to one writer only");

    /// <summary>Leaves the writer to its owner.</summary>
    public void Dispose()
    {
    }

    private void Write(string message)
    {
        lock (_lock)
            writer.WriteLine(Prefix + message);
    }

    private sealed class LineLogger(HookLoggerFactory owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None && logLevel >= owner._minimumLevel;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
                return;
            string message = formatter(state, exception);
            if (exception is not null)
                message += $" ({exception.GetType().Name}: {exception.Message.ReplaceLineEndings(" ")})";
            owner.Write(message);
        }
    }

    private readonly LogLevel _minimumLevel = minimum;
}

internal static partial class HookLogMessages
{
    [LoggerMessage(Level = LogLevel.Information, Message = "{Message}")]
    public static partial void LogLine(this ILogger logger, string message);
}
