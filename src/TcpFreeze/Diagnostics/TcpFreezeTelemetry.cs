namespace TcpFreeze;

/// <summary>
/// The names under which TcpFreeze reports what it does, for <c>System.Diagnostics</c> listeners
/// (OpenTelemetry: <c>AddMeter(TcpFreezeTelemetry.MeterName)</c>,
/// <c>AddSource(TcpFreezeTelemetry.ActivitySourceName)</c>). docs/observability.md
/// lists every instrument and span.
/// </summary>
/// <remarks>Thread safety: the names are constants; the instruments are safe for concurrent use, as System.Diagnostics' are.</remarks>
public static class TcpFreezeTelemetry
{
    /// <summary>
    /// The <see cref="System.Diagnostics.Metrics.Meter"/>: frozen connections and endpoints (gauges),
    /// the kernel programs' packet counters, and freeze, thaw, kick and attach operations with their durations.
    /// </summary>
    public const string MeterName = "TcpFreeze";

    /// <summary>The <see cref="System.Diagnostics.ActivitySource"/>: spans for attach, detach, freeze, thaw and the resume kick.</summary>
    public const string ActivitySourceName = "TcpFreeze";

    /// <summary>The tag that tells the namespaces of one process apart: the pin directory (PIN_ROOT/netns-COOKIE).</summary>
    public const string PinDirectoryTag = "tcpfreeze.pin_directory";
}
