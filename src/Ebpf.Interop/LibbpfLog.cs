using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Interop;

namespace TcpFreeze.Ebpf.Interop;

/// <summary>
/// Routes libbpf's log (warnings, and the verifier log when a load fails) to an
/// <see cref="ILogger"/> instead of libbpf's default of writing to stderr.
/// <para>
/// libbpf has one print callback per process (<c>libbpf_set_print</c>). This class installs it
/// once and owns it; nobody takes it over. libbpf calls it synchronously, on the thread (and in
/// the flow) of the libbpf call that logs, so each message goes to the logger of the innermost
/// <see cref="Route"/> scope around that call, and only when no scope is open to the process-wide
/// default of <see cref="SetLogger"/>. A library that owns one logger per instance (a
/// <c>TcpFreezer</c>) opens a scope around its calls, so two of them in one process each get
/// their own messages, whichever was created last.
/// </para>
/// <para>
/// libbpf's own "libbpf: " prefix is removed (the logger's category, <see cref="Category"/>, says
/// where a message comes from), and the kernel's answers to probes that are expected to fail
/// (<see cref="IsExpectedProbeFailure"/>) are logged at <see cref="LogLevel.Debug"/>, not as warnings.
/// </para>
/// </summary>
public static unsafe class LibbpfLog
{
    /// <summary>The logger category the TcpFreeze libraries use for libbpf's messages.</summary>
    public const string Category = "TcpFreeze.Ebpf.Interop.Libbpf";

    private static ILogger s_default = NullLogger.Instance;
    private static int s_installed;
    private const int LineCapacity = 1 << 16;

    private static readonly AsyncLocal<ILogger?> s_routed = new();
    [ThreadStatic] private static StringBuilder? t_capture;
    [ThreadStatic] private static byte[]? t_buffer;

    /// <summary>
    /// Sets the process-wide default: where messages go that no <see cref="Route"/> scope claims
    /// (null: discard them). It does not redirect messages inside a scope.
    /// </summary>
    public static void SetLogger(ILogger? logger)
    {
        s_default = logger ?? NullLogger.Instance;
        EnsureInstalled();
    }

    /// <summary>
    /// Sends what libbpf logs in this flow (this thread, and work it starts) to
    /// <paramref name="logger"/> until the scope is disposed; scopes nest. A null logger opens
    /// no scope: messages keep going where they went.
    /// </summary>
    public static RouteScope Route(ILogger? logger)
    {
        if (logger is null)
            return default;
        EnsureInstalled();
        ILogger? previous = s_routed.Value;
        s_routed.Value = logger;
        return new RouteScope(previous, active: true);
    }

    /// <summary>An open <see cref="Route"/>; disposing it restores the route that was in place before.</summary>
    public readonly struct RouteScope : IDisposable
    {
        private readonly ILogger? _previous;
        private readonly bool _active;

        internal RouteScope(ILogger? previous, bool active)
        {
            _previous = previous;
            _active = active;
        }

        /// <summary>Restores the previous route.</summary>
        public void Dispose()
        {
            if (_active)
                s_routed.Value = _previous;
        }
    }

    /// <summary>Installs the callback once; libbpf would otherwise print to stderr.</summary>
    internal static void EnsureInstalled()
    {
        if (Interlocked.Exchange(ref s_installed, 1) == 0)
            Libbpf.libbpf_set_print(&Print);
    }

    /// <summary>Collects everything libbpf logs on this thread until the scope is disposed.</summary>
    internal static CaptureScope Capture()
    {
        EnsureInstalled();
        var previous = t_capture;
        t_capture = new StringBuilder();
        return new CaptureScope(previous);
    }

    internal readonly struct CaptureScope(StringBuilder? previous) : IDisposable
    {
        public string Text => t_capture?.ToString() ?? string.Empty;

        public void Dispose() => t_capture = previous;
    }

    /// <summary>
    /// The kernel's answers (netlink extack, which libbpf prints as a warning) to the probes that
    /// TcpFreeze makes knowing they may fail: asking for a TC filter where there is no clsact
    /// qdisc or no filter yet, creating the clsact qdisc where it exists already (EEXIST, which
    /// the caller takes as success), and trying native XDP on a driver without it before falling
    /// back to generic mode. They are normal, not warnings.
    /// </summary>
    internal static bool IsExpectedProbeFailure(string message)
        => ExpectedProbeFailures.Any(m => message.Contains(m, StringComparison.Ordinal));

    private static readonly string[] ExpectedProbeFailures =
    [
        "Parent Qdisc doesn't exists",
        "Cannot find specified filter chain",
        "Exclusivity flag on, cannot modify",
        "does not support XDP in native mode",
    ];

    /// <summary>The level a libbpf message is logged at (libbpf: 0 warning, 1 info, 2 debug).</summary>
    internal static LogLevel LevelOf(int libbpfLevel, string message) => libbpfLevel switch
    {
        0 when IsExpectedProbeFailure(message) => LogLevel.Debug,
        0 => LogLevel.Warning,
        1 => LogLevel.Information,
        _ => LogLevel.Debug,
    };

    /// <summary>The message without libbpf's own "libbpf: " prefix and trailing new line.</summary>
    internal static string Clean(string text)
    {
        ReadOnlySpan<char> span = text.AsSpan().TrimEnd();
        const string Prefix = "libbpf: ";
        return (span.StartsWith(Prefix, StringComparison.Ordinal) ? span[Prefix.Length..] : span).ToString();
    }

    /// <summary>Where a formatted libbpf message goes: the capture of this thread, and the routed (or default) logger.</summary>
    internal static void Dispatch(int level, string text)
    {
        t_capture?.Append(text);
        ILogger logger = s_routed.Value ?? s_default;
        string message = Clean(text);
        LogLevel logLevel = LevelOf(level, message);
        if (message.Length > 0 && logger.IsEnabled(logLevel))
            logger.Log(logLevel, "libbpf: {Message}", message);
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int Print(int level, nint format, nint args)
    {
        try
        {
            // A va_list can be consumed only once, so format into one generous buffer.
            byte[] buffer = t_buffer ??= new byte[LineCapacity];
            int length;
            fixed (byte* p = buffer)
                length = Libc.vsnprintf(p, (nuint)buffer.Length, format, args);
            if (length < 0)
                return 0;
            Dispatch(level, Encoding.UTF8.GetString(buffer, 0, Math.Min(length, buffer.Length - 1)));
            return length;
        }
        catch
        {
            return 0; // never let an exception cross into native code
        }
    }
}
