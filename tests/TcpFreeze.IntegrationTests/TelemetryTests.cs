using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using TcpFreeze.Ebpf.Interop;
using Microsoft.Extensions.Logging;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// The meter, the spans and the logging of a real freezer, attached in namespaces of the test's
/// own: what a MeterListener, an ActivityListener and an ILoggerFactory receive.
/// </summary>
[Trait("Privileges", "root")]
public sealed class TelemetryTests
{
    [RootFact]
    public void The_meter_reports_frozen_connections_the_kernels_drop_counters_and_each_operation()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        using var pair = TcpPair.Open(network.A, network.B, new IPEndPoint(network.AddressB(AddressFamily.InterNetwork), 8080));
        FreezerOptions options = pins.Options(network.B);
        using var meter = new MeterRecorder();
        var spans = new List<Activity>();
        using var activities = new ActivityListener
        {
            ShouldListenTo = source => source.Name == TcpFreezeTelemetry.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                lock (spans)
                    spans.Add(activity);
            },
        };
        ActivitySource.AddActivityListener(activities);
        try
        {
            using TcpFreezer freezer = TcpFreezer.Attach(options);
            string directory = freezer.PinDirectory;
            freezer.Freeze([pair.ServerView]);
            // Data from the client, dropped on the server's ingress; the server's answer, dropped on its egress.
            pair.Client.Send("to the frozen server"u8);
            pair.Server.Send("from the frozen server"u8);
            Assert.True(Until(() => freezer.GetStatistics() is { DroppedIngress: > 0, DroppedEgress: > 0 }, TimeSpan.FromSeconds(10)),
                $"no drops counted: {freezer.GetStatistics()}");

            meter.Collect();
            Assert.Equal(1, meter.Last("tcpfreeze.frozen.connections", directory));
            Assert.Equal(0, meter.Last("tcpfreeze.frozen.endpoints", directory));
            FreezerStatistics stats = freezer.GetStatistics();
            Assert.InRange(meter.Last("tcpfreeze.packets.dropped", directory, ("network.io.direction", "receive")), 1, (double)stats.DroppedIngress);
            Assert.InRange(meter.Last("tcpfreeze.packets.dropped", directory, ("network.io.direction", "transmit")), 1, (double)stats.DroppedEgress);
            Assert.True(meter.Last("tcpfreeze.packets.seen", directory) > 0);
            Assert.True(meter.Last("tcpfreeze.packets.passed", directory) >= 0);

            freezer.Thaw([pair.ServerView]);
            meter.Collect();
            Assert.Equal(0, meter.Last("tcpfreeze.frozen.connections", directory));
            Assert.Equal(1, meter.Sum("tcpfreeze.attach.operations", directory));
            Assert.Equal(1, meter.Sum("tcpfreeze.freeze.operations", directory));
            Assert.Equal(1, meter.Sum("tcpfreeze.thaw.operations", directory));
            Assert.Equal(1, meter.Count("tcpfreeze.freeze.duration", directory));
            Assert.Equal(1, meter.Count("tcpfreeze.thaw.duration", directory));
            Assert.InRange(meter.Sum("tcpfreeze.freeze.duration", directory), 1e-7, 10);
            // Data segments were dropped both ways, so the thaw kicked the connection.
            Assert.Equal(1, meter.Sum("tcpfreeze.kick.operations", directory));
            Assert.True(meter.Sum("tcpfreeze.kick.messages", directory) > 0);

            string[] names;
            lock (spans)
                names = spans.Where(s => Equals(s.GetTagItem(TcpFreezeTelemetry.PinDirectoryTag), directory)).Select(s => s.OperationName).ToArray();
            Assert.Equal(["tcpfreeze.attach", "tcpfreeze.freeze", "tcpfreeze.thaw", "tcpfreeze.kick"], names);
            Activity freeze = spans.Single(s => s.OperationName == "tcpfreeze.freeze" && Equals(s.GetTagItem(TcpFreezeTelemetry.PinDirectoryTag), directory));
            Assert.Equal(1, freeze.GetTagItem("tcpfreeze.connections"));
            Assert.Equal(ActivityStatusCode.Unset, freeze.Status);
        }
        finally
        {
            TcpFreezer.Detach(options);
        }

        // Closed freezers are no longer observed.
        meter.Collect();
        Assert.DoesNotContain(meter.Measurements, m => m.Instrument == "tcpfreeze.frozen.connections" && m.Collection == meter.Collections
                                                       && Equals(m.Tag(TcpFreezeTelemetry.PinDirectoryTag), TcpFreezer.GetPinDirectory(options)));
    }

    [RootFact]
    public void A_failed_freeze_is_counted_with_its_error_type()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B) with { MaxConnections = 1 };
        using var meter = new MeterRecorder();
        try
        {
            using TcpFreezer freezer = TcpFreezer.Attach(options);
            ConnectionKey[] two = [ConnectionKey.Parse("198.18.0.1:80 198.18.0.2:40000"), ConnectionKey.Parse("198.18.0.1:80 198.18.0.2:40001")];
            Assert.Throws<TcpFreezeException>(() => freezer.Freeze(two));
            Recorded failed = Assert.Single(meter.Measurements, m => m.Instrument == "tcpfreeze.freeze.operations"
                                                                     && Equals(m.Tag(TcpFreezeTelemetry.PinDirectoryTag), freezer.PinDirectory));
            // The errno name when the kernel refused, else the exception's type.
            Assert.Matches(@"^(E[A-Z0-9]+|TcpFreeze\.TcpFreezeException)$", (string)failed.Tag("error.type")!);
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }

    [RootFact]
    public void Each_freezer_gets_libbpfs_messages_from_its_own_calls_whichever_attached_last()
    {
        using var network = TestNetwork.Create();
        using var pinsA = new PinRoot();
        using var pinsB = new PinRoot();
        using var logsA = new RecordingLoggerFactory();
        using var logsB = new RecordingLoggerFactory();
        // A fresh attach to loopback (TC ingress and egress) first finds no clsact qdisc there, and the kernel says so.
        FreezerOptions a = pinsA.Options(network.A, "lo") with { LoggerFactory = logsA };
        FreezerOptions b = pinsB.Options(network.B, "lo") with { LoggerFactory = logsB };
        try
        {
            TcpFreezer.Attach(a).Dispose();
            int fromA = logsA.Records.Count;
            TcpFreezer.Attach(b).Dispose();
            Assert.Equal(fromA, logsA.Records.Count);
            int fromB = logsB.Records.Count;
            // B attached last; A's next calls still log to A.
            TcpFreezer.Detach(a);
            TcpFreezer.Attach(a).Dispose();
            Assert.Equal(fromB, logsB.Records.Count);

            // The second attach of A probed again, and its message went to A.
            const string Probe = "Parent Qdisc doesn't exist";
            Assert.Contains(logsA.Records.Skip(fromA), r => r.Message.Contains(Probe));
            LogRecord probe = logsA.Records.First(r => r.Message.Contains(Probe));
            Assert.Equal(LogLevel.Debug, probe.Level);
            Assert.Equal(LibbpfLog.Category, probe.Category);
            Assert.StartsWith("libbpf: ", probe.Message);
            Assert.Contains(logsB.Records, r => r.Message.Contains(Probe) && r.Level == LogLevel.Debug);
            foreach (LogRecord record in logsA.Records.Concat(logsB.Records))
            {
                Assert.DoesNotContain("libbpf: libbpf:", record.Message);
                Assert.False(record.Level >= LogLevel.Warning,
                    $"a warning from an attach that worked: {record}; all: {string.Join(" | ", logsA.Records.Select(r => $"{r.Level} {r.Message}"))}");
            }
        }
        finally
        {
            TcpFreezer.Detach(a);
            TcpFreezer.Detach(b);
        }
    }

    private static bool Until(Func<bool> condition, TimeSpan bound)
    {
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            if (watch.Elapsed > bound)
                return false;
            Thread.Sleep(20);
        }
        return true;
    }

    /// <summary>Records every measurement of TcpFreeze's meter, with the collection it came in.</summary>
    private sealed class MeterRecorder : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly List<Recorded> _measurements = [];

        public MeterRecorder()
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == TcpFreezeTelemetry.MeterName)
                    listener.EnableMeasurementEvents(instrument);
            };
            _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Add(i, v, tags));
            _listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Add(i, v, tags));
            _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Add(i, v, tags));
            _listener.Start();
        }

        public int Collections { get; private set; }

        public IReadOnlyList<Recorded> Measurements
        {
            get
            {
                lock (_measurements)
                    return [.. _measurements];
            }
        }

        public void Collect()
        {
            Collections++;
            _listener.RecordObservableInstruments();
        }

        private void Add(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            lock (_measurements)
                _measurements.Add(new Recorded(instrument.Name, value, tags.ToArray(), Collections));
        }

        private IEnumerable<Recorded> Matching(string instrument, string directory, (string Key, string Value)[] tags)
            => Measurements.Where(m => m.Instrument == instrument && Equals(m.Tag(TcpFreezeTelemetry.PinDirectoryTag), directory)
                                       && tags.All(t => Equals(m.Tag(t.Key), t.Value)));

        /// <summary>The value of an observable instrument in the last collection.</summary>
        public double Last(string instrument, string directory, params (string Key, string Value)[] tags)
            => Assert.Single(Matching(instrument, directory, tags), m => m.Collection == Collections).Value;

        public double Sum(string instrument, string directory, params (string Key, string Value)[] tags)
            => Matching(instrument, directory, tags).Sum(m => m.Value);

        public int Count(string instrument, string directory) => Matching(instrument, directory, []).Count();

        public void Dispose() => _listener.Dispose();
    }

    private sealed record Recorded(string Instrument, double Value, KeyValuePair<string, object?>[] Tags, int Collection)
    {
        public object? Tag(string key) => Tags.FirstOrDefault(t => t.Key == key).Value;
    }
}
