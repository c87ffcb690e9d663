using System.Diagnostics;
using System.Globalization;

namespace TcpFreeze.CriuHooks;

/// <summary>
/// The time a hook step takes, in total and per phase, for its log line: "in 4.2 ms (read 0.3 ms, discover 1.9 ms, ...)".
/// The clock starts when the step's handler does (the executable's own start shows in CRIU's log,
/// from the line that names the script to CRIU's next one).
/// </summary>
internal sealed class StepTimer
{
    private readonly long _started = Stopwatch.GetTimestamp();
    private readonly List<(string Phase, double Ms)> _phases = [];
    private long _last;

    public StepTimer() => _last = _started;

    /// <summary>Ends the current phase, naming it.</summary>
    public void Mark(string phase)
    {
        long now = Stopwatch.GetTimestamp();
        _phases.Add((phase, Stopwatch.GetElapsedTime(_last, now).TotalMilliseconds));
        _last = now;
    }

    /// <summary>Milliseconds since the step started.</summary>
    public double TotalMs => Stopwatch.GetElapsedTime(_started).TotalMilliseconds;

    /// <summary>"in T ms (phase t ms, ...)": the total first, which is what the migration benchmark reads.</summary>
    public override string ToString()
        => string.Create(CultureInfo.InvariantCulture, $"in {TotalMs:F1} ms ({string.Join(", ", _phases.Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.Phase} {p.Ms:F1} ms")))})");
}
