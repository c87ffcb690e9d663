using Microsoft.Extensions.Logging;

namespace TcpFreeze.Tests.Infrastructure;

/// <summary>A logger factory that records every message with its category and level, for assertions.</summary>
public sealed class RecordingLoggerFactory : ILoggerFactory
{
    private readonly List<LogRecord> _records = [];

    public IReadOnlyList<LogRecord> Records
    {
        get
        {
            lock (_records)
                return [.. _records];
        }
    }

    public ILogger CreateLogger(string categoryName) => new Recorder(this, categoryName);

    public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();

    public void Dispose()
    {
    }

    private sealed class Recorder(RecordingLoggerFactory owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (owner._records)
                owner._records.Add(new LogRecord(category, logLevel, formatter(state, exception)));
        }
    }
}

/// <summary>One recorded message.</summary>
public sealed record LogRecord(string Category, LogLevel Level, string Message);
