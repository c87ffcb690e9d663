using System.Diagnostics;
using System.Diagnostics.Metrics;
using TcpFreeze.CriuHooks;
using TcpFreeze.Native;

namespace TcpFreeze.Tests.Diagnostics;

/// <summary>The meter's operation instruments and the spans, recorded without a kernel: what listeners receive.</summary>
public sealed class TelemetryUnitTests
{
    private static readonly string Directory = $"/sys/fs/bpf/tcpfreeze-unit-{Environment.ProcessId}-{Guid.NewGuid():N}/netns-1";

    [Fact]
    public void An_operation_is_counted_timed_and_traced_under_the_librarys_names()
    {
        using var recorder = new Recorder(Directory);
        using (Telemetry.Start("freeze", Directory))
        {
        }
        using (Telemetry.Operation failed = Telemetry.Start("thaw", Directory))
            failed.Fail(new TcpFreezeException("thaw", "the map is gone", new NativeCallException("lookup", Errnos.ENOENT)));

        Assert.Equal(1, recorder.Sum("tcpfreeze.freeze.operations"));
        Assert.Equal(1, recorder.Count("tcpfreeze.freeze.duration"));
        Assert.Equal([("tcpfreeze.thaw.operations", "ENOENT")], recorder.Measurements
            .Where(m => m.Instrument == "tcpfreeze.thaw.operations").Select(m => (m.Instrument, m.Tag("error.type") as string)));
        Activity[] spans = recorder.Spans;
        Assert.Equal(["tcpfreeze.freeze", "tcpfreeze.thaw"], spans.Select(s => s.OperationName));
        Assert.Equal(ActivityStatusCode.Unset, spans[0].Status);
        Assert.Equal(ActivityStatusCode.Error, spans[1].Status);
        Assert.Equal("ENOENT", spans[1].GetTagItem("error.type"));
    }

    [Fact]
    public void Each_hook_step_is_a_span_and_a_duration_with_the_librarys_spans_inside()
    {
        using var recorder = new Recorder(Directory);
        var dispatcher = new CriuHookDispatcher()
            .On(CriuAction.PreDump, (_, _) =>
            {
                using (Telemetry.Start("freeze", Directory))
                    return 0;
            })
            .On(CriuAction.PreResume, (_, _) => throw new HookException($"the manifest of {Directory} is gone"));
        var context = new HookContext(new HookSettings(), new StringWriter(), criuPid: 1, executablePath: null);
        Assert.Equal(0, dispatcher.Dispatch(new CriuEnvironment(CriuAction.PreDump, "pre-dump", null, null), context));
        Assert.Equal(1, dispatcher.Dispatch(new CriuEnvironment(CriuAction.PreResume, "pre-resume", null, null), context));

        Activity freeze = Assert.Single(recorder.Spans, s => s.OperationName == "tcpfreeze.freeze");
        Activity step = Assert.Single(recorder.AllSpans, s => s.SpanId == freeze.ParentSpanId);
        Assert.Equal("tcpfreeze.hook.pre-dump", step.OperationName);
        Assert.Equal("pre-dump", step.GetTagItem("criu.action"));
        Activity failed = Assert.Single(recorder.AllSpans, s => s.StatusDescription?.Contains(Directory) == true);
        Assert.Equal("tcpfreeze.hook.pre-resume", failed.OperationName);
        Assert.Equal(ActivityStatusCode.Error, failed.Status);
        Assert.Equal("HookException", failed.GetTagItem("error.type"));
        Assert.Contains(recorder.Measurements, m => m.Instrument == "tcpfreeze.hook.step.duration" && Equals(m.Tag("criu.action"), "pre-resume")
                                                    && Equals(m.Tag("error.type"), "HookException"));
    }

    [Fact]
    public void The_hook_context_writes_one_prefixed_line_per_message_through_its_logger()
    {
        var writer = new StringWriter();
        var fromWriter = new HookContext(new HookSettings(), writer, criuPid: 1, executablePath: null);
        fromWriter.Info("pre-dump: froze 3 connections");
        Assert.Same(writer, fromWriter.Log);

        var lines = new StringWriter();
        var fromFactory = new HookContext(new HookSettings(), new HookLoggerFactory(lines), criuPid: 1, executablePath: null);
        fromFactory.Info("pre-dump: froze 3 connections");
        fromFactory.Log.WriteLine("a line written the old way");
        Microsoft.Extensions.Logging.LoggerExtensions.LogDebug(fromFactory.LoggerFactory.CreateLogger(TcpFreeze.Ebpf.Interop.LibbpfLog.Category), "libbpf: a probe failed, as expected");

        Assert.Equal("tcpfreeze-hook: pre-dump: froze 3 connections\n", writer.ToString());
        Assert.Equal("tcpfreeze-hook: pre-dump: froze 3 connections\ntcpfreeze-hook: a line written the old way\n", lines.ToString());
    }

    /// <summary>Listens to TcpFreeze's meter and spans, keeping what concerns one pin directory (other tests run in parallel).</summary>
    private sealed class Recorder : IDisposable
    {
        private readonly MeterListener _meter = new();
        private readonly ActivityListener _spans;
        private readonly List<(string Instrument, double Value, KeyValuePair<string, object?>[] Tags)> _measurements = [];
        private readonly List<Activity> _activities = [];
        private readonly string _directory;

        public Recorder(string directory)
        {
            _directory = directory;
            _meter.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == TcpFreezeTelemetry.MeterName)
                    listener.EnableMeasurementEvents(instrument);
            };
            _meter.SetMeasurementEventCallback<long>((i, v, t, _) => Add(i, v, t));
            _meter.SetMeasurementEventCallback<double>((i, v, t, _) => Add(i, v, t));
            _meter.Start();
            _spans = new ActivityListener
            {
                ShouldListenTo = s => s.Name == TcpFreezeTelemetry.ActivitySourceName,
                Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
                ActivityStopped = a =>
                {
                    lock (_activities)
                        _activities.Add(a);
                },
            };
            ActivitySource.AddActivityListener(_spans);
        }

        private void Add(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            lock (_measurements)
                _measurements.Add((instrument.Name, value, tags.ToArray()));
        }

        public IEnumerable<Measured> Measurements
        {
            get
            {
                lock (_measurements)
                    return _measurements.Select(m => new Measured(m.Instrument, m.Value, m.Tags))
                        .Where(m => m.Tag(TcpFreezeTelemetry.PinDirectoryTag) is not string d || d == _directory).ToArray();
            }
        }

        public double Sum(string instrument) => Measurements.Where(m => m.Instrument == instrument && Equals(m.Tag(TcpFreezeTelemetry.PinDirectoryTag), _directory)).Sum(m => m.Value);

        public int Count(string instrument) => Measurements.Count(m => m.Instrument == instrument && Equals(m.Tag(TcpFreezeTelemetry.PinDirectoryTag), _directory));

        /// <summary>The spans of this pin directory.</summary>
        public Activity[] Spans => AllSpans.Where(a => Equals(a.GetTagItem(TcpFreezeTelemetry.PinDirectoryTag), _directory)).ToArray();

        public Activity[] AllSpans
        {
            get
            {
                lock (_activities)
                    return [.. _activities];
            }
        }

        public void Dispose()
        {
            _meter.Dispose();
            _spans.Dispose();
        }
    }

    private sealed record Measured(string Instrument, double Value, KeyValuePair<string, object?>[] Tags)
    {
        public object? Tag(string key) => Tags.FirstOrDefault(t => t.Key == key).Value;
    }
}
