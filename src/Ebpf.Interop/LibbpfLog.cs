using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Interop;

namespace Ebpf.Interop;

/// <summary>
/// Routes libbpf's log (warnings, and the verifier log when a load fails) to an
/// <see cref="ILogger"/> instead of libbpf's default of writing to stderr.
/// </summary>
public static unsafe class LibbpfLog
{
    private static ILogger s_logger = NullLogger.Instance;
    private static int s_installed;
    private const int LineCapacity = 1 << 16;

    [ThreadStatic] private static StringBuilder? t_capture;
    [ThreadStatic] private static byte[]? t_buffer;

    /// <summary>Sends libbpf's messages to <paramref name="logger"/> (null: discard them).</summary>
    public static void SetLogger(ILogger? logger)
    {
        s_logger = logger ?? NullLogger.Instance;
        EnsureInstalled();
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
            string text = Encoding.UTF8.GetString(buffer, 0, Math.Min(length, buffer.Length - 1));
            t_capture?.Append(text);
            LogLevel logLevel = level switch { 0 => LogLevel.Warning, 1 => LogLevel.Information, _ => LogLevel.Debug };
            if (s_logger.IsEnabled(logLevel))
                s_logger.Log(logLevel, "libbpf: {Message}", text.TrimEnd());
            return length;
        }
        catch
        {
            return 0; // never let an exception cross into native code
        }
    }
}
