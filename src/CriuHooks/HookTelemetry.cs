using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace TcpFreeze.CriuHooks;

/// <summary>
/// The hook's spans and step durations, under the library's names (<see cref="TcpFreezeTelemetry.MeterName"/>,
/// <see cref="TcpFreezeTelemetry.ActivitySourceName"/>), so one subscription sees both: a span
/// tcpfreeze.hook.STEP for each CRIU step a handler runs at, with the library's attach, freeze and
/// thaw spans inside it.
/// </summary>
internal static class HookTelemetry
{
    private static readonly string? Version = typeof(HookTelemetry).Assembly.GetName().Version?.ToString();

    public static readonly ActivitySource Source = new(TcpFreezeTelemetry.ActivitySourceName, Version);

    private static readonly Meter Meter = new(TcpFreezeTelemetry.MeterName, Version);

    public static readonly Histogram<double> StepDuration = Meter.CreateHistogram<double>("tcpfreeze.hook.step.duration", "s",
        "How long the hook's handlers took at one CRIU step (criu.action); failed steps carry error.type.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
}
