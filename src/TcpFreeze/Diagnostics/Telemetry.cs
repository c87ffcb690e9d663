using System.Diagnostics;
using System.Diagnostics.Metrics;
using TcpFreeze.Native;

namespace TcpFreeze;

/// <summary>
/// TcpFreeze's meter and activity source. Operations record themselves through
/// <see cref="Start"/>; the gauges and the kernel's packet counters are read from every
/// <see cref="TcpFreezer"/> open in this process (one reading per pin directory) when a
/// listener collects, never in between.
/// </summary>
internal static class Telemetry
{
    private static readonly string? Version = typeof(Telemetry).Assembly.GetName().Version?.ToString();

    public static readonly ActivitySource Source = new(TcpFreezeTelemetry.ActivitySourceName, Version);

    private static readonly Meter Meter = new(TcpFreezeTelemetry.MeterName, Version);

    private static readonly Dictionary<string, Counter<long>> Operations = [];
    private static readonly Dictionary<string, Histogram<double>> Durations = [];

    /// <summary>Small buckets: a freeze or thaw takes tens of microseconds to milliseconds, an attach milliseconds.</summary>
    private static readonly IReadOnlyList<double> DurationBuckets =
        [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    public static readonly Counter<long> KickMessages = Meter.CreateCounter<long>(
        "tcpfreeze.kick.messages", "{message}", "Resume-kick messages (ICMP unreachable) sent to thawed connections.");

    private static readonly List<TcpFreezer> Open = [];

    static Telemetry()
    {
        foreach ((string operation, string what) in new[]
                 {
                     ("attach", "Attaches (loading or reusing the programs and maps of a namespace and attaching them to its interfaces)."),
                     ("detach", "Detaches (removing the programs and pins of a namespace)."),
                     ("freeze", "Freeze calls (each one batch of connections and endpoints)."),
                     ("thaw", "Thaw calls (each one batch of connections and endpoints)."),
                     ("renew", "Lease renewals of frozen keys (the CRIU hook's dump watcher renews while CRIU holds the tasks)."),
                     ("kick", "Resume kicks sent after a thaw (one per thaw that released connections with dropped data)."),
                 })
        {
            Operations[operation] = Meter.CreateCounter<long>($"tcpfreeze.{operation}.operations", "{operation}", what + " Failed ones carry error.type.");
            Durations[operation] = Meter.CreateHistogram<double>($"tcpfreeze.{operation}.duration", "s", $"How long each {operation} took.",
                advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });
        }
        Meter.CreateObservableGauge("tcpfreeze.frozen.connections", () => Observe(f => f.CountFrozen(endpoints: false)), "{connection}",
            "Connections frozen now (entries whose lease ended are not counted).");
        Meter.CreateObservableGauge("tcpfreeze.frozen.endpoints", () => Observe(f => f.CountFrozen(endpoints: true)), "{endpoint}",
            "Local endpoints frozen now (entries whose lease ended are not counted).");
        Meter.CreateObservableCounter("tcpfreeze.packets.dropped", ObserveDropped, "{packet}",
            "Packets the kernel programs dropped since they were loaded; network.io.direction receive (ingress) or transmit (egress).");
        Meter.CreateObservableCounter("tcpfreeze.packets.passed", () => Observe(f => (long)f.ReadCounter(BpfNames.CounterPassed)), "{packet}",
            "Packets the kernel programs let through since they were loaded (TCP or not).");
        Meter.CreateObservableCounter("tcpfreeze.packets.seen", () => Observe(f => (long)f.ReadCounter(BpfNames.CounterSeen)), "{packet}",
            "TCP packets the kernel programs parsed since they were loaded.");
    }

    /// <summary>Makes <paramref name="freezer"/>'s namespace visible to the observable instruments until <see cref="Forget"/>.</summary>
    public static void Track(TcpFreezer freezer)
    {
        lock (Open)
            Open.Add(freezer);
    }

    /// <summary>Stops observing <paramref name="freezer"/>; after this returns no callback reads its maps.</summary>
    public static void Forget(TcpFreezer freezer)
    {
        lock (Open)
            Open.Remove(freezer);
    }

    private static List<Measurement<T>> Observe<T>(Func<FreezerMaps, T> read) where T : struct
    {
        var measurements = new List<Measurement<T>>();
        lock (Open)
        {
            foreach (TcpFreezer freezer in Open.DistinctBy(f => f.PinDirectory))
            {
                try
                {
                    measurements.Add(new Measurement<T>(read(freezer.Maps), new KeyValuePair<string, object?>(TcpFreezeTelemetry.PinDirectoryTag, freezer.PinDirectory)));
                }
                catch (Exception e) when (e is NativeCallException or InvalidOperationException or ObjectDisposedException)
                {
                    // A map detached under us: nothing to report for that namespace this time.
                }
            }
        }
        return measurements;
    }

    private static IEnumerable<Measurement<long>> ObserveDropped()
    {
        foreach ((int counter, string direction) in new[] { (BpfNames.CounterDroppedIngress, "receive"), (BpfNames.CounterDroppedEgress, "transmit") })
            foreach (Measurement<long> m in Observe(f => (long)f.ReadCounter(counter)))
                yield return new Measurement<long>(m.Value, [.. m.Tags, new KeyValuePair<string, object?>("network.io.direction", direction)]);
    }

    /// <summary>
    /// Starts recording one operation: a span named tcpfreeze.OPERATION (when someone listens) and,
    /// at <see cref="Operation.Dispose"/>, its count and duration. Call <see cref="Operation.Fail"/>
    /// before disposing when it failed.
    /// </summary>
    public static Operation Start(string operation, string? pinDirectory)
    {
        Activity? activity = Source.StartActivity($"tcpfreeze.{operation}", ActivityKind.Internal);
        if (activity is not null && pinDirectory is not null)
            activity.SetTag(TcpFreezeTelemetry.PinDirectoryTag, pinDirectory);
        return new Operation(operation, pinDirectory, activity, Stopwatch.GetTimestamp());
    }

    /// <summary>One operation being recorded (see <see cref="Start"/>).</summary>
    public sealed class Operation(string name, string? pinDirectory, Activity? activity, long started) : IDisposable
    {
        private string? _error;
        private string? _pinDirectory = pinDirectory;

        /// <summary>The namespace's pin directory, when it is known only once the operation has begun.</summary>
        public string? PinDirectory
        {
            get => _pinDirectory;
            set
            {
                _pinDirectory = value;
                activity?.SetTag(TcpFreezeTelemetry.PinDirectoryTag, value);
            }
        }

        /// <summary>The span, or null when nobody listens.</summary>
        public Activity? Activity => activity;

        /// <summary>Adds a tag to the span (no-op without one).</summary>
        public void Tag(string key, object? value) => activity?.SetTag(key, value);

        /// <summary>Marks the operation failed with <paramref name="e"/>.</summary>
        public void Fail(Exception e)
        {
            _error = e is TcpFreezeException t && t.Errno > 0 ? Errnos.Name(t.Errno) : e.GetType().FullName;
            activity?.SetStatus(ActivityStatusCode.Error, e.Message);
            activity?.SetTag("error.type", _error);
        }

        public void Dispose()
        {
            double seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            var tags = new TagList();
            if (_pinDirectory is not null)
                tags.Add(TcpFreezeTelemetry.PinDirectoryTag, _pinDirectory);
            if (_error is not null)
                tags.Add("error.type", _error);
            Operations[name].Add(1, tags);
            Durations[name].Record(seconds, tags);
            activity?.Dispose();
        }
    }
}
