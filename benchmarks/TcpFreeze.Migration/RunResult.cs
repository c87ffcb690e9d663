using System.Globalization;
using System.Text;

namespace TcpFreeze.Migration;

/// <summary>What one migration of one method with N connections gave: one CSV row.</summary>
internal sealed record RunResult
{
    public const string StatusOk = "ok";
    public const string StatusAborted = "aborted";           // criu dump failed: the tasks keep running
    public const string StatusRestoreFailed = "restore-failed";
    public const string StatusError = "error";               // the harness itself failed (setup, timeout)

    public required string Method { get; init; }
    public required int Connections { get; init; }
    public required int Run { get; init; }
    /// <summary>The --copy-delay of this run: seconds from the dump's end to the restore's start.</summary>
    public int CopyDelaySeconds { get; init; }
    public required string Load { get; init; }
    public DateTime StartedUtc { get; init; } = DateTime.UtcNow;
    public string Status { get; set; } = StatusError;
    public int? CriuExitCode { get; set; }
    public string? Error { get; set; }

    public double? DumpMs { get; set; }
    public double? WaitForPidMs { get; set; }
    public double? RestoreMs { get; set; }
    /// <summary>criu dump start to criu restore end.</summary>
    public double? DowntimeMs { get; set; }
    /// <summary>The longest time between two consecutive replies on any surviving connection, from just before the dump.</summary>
    public double? LongestGapMs { get; set; }
    /// <summary>Measured time from the dump's end to the restore's start (the copy delay, or the wait for the PID if longer).</summary>
    public double? CopyGapMs { get; set; }

    /// <summary>Requests in flight across the restore's end: sent before it ended and not answered when it ended.</summary>
    public int? ResumeInFlight { get; set; }
    /// <summary>Connections whose first answer after the dump's end came before the restore's end (resumed before CRIU exited: not in flight).</summary>
    public int? ResumedBeforeEnd { get; set; }
    /// <summary>
    /// Requests held by the migration: each connection's first answer after the dump's end, when its request was sent before
    /// the restore's end (the in-flight ones plus <see cref="ResumedBeforeEnd"/>), and the lag from the restore's end to it
    /// with answers before the end counted as 0 (p50, p99, max).
    /// </summary>
    public int? ResumeHeld { get; set; }
    public double? ResumeHeldP50Ms { get; set; }
    public double? ResumeHeldP99Ms { get; set; }
    public double? ResumeHeldMaxMs { get; set; }
    /// <summary>Connections never answered (their connection failed or stayed silent within the recovery bound).</summary>
    public int? ResumeUnanswered { get; set; }
    /// <summary>Resume lag of the answered in-flight requests: restore end to the answer (p50, p99, max; nearest rank).</summary>
    public double? ResumeLagP50Ms { get; set; }
    public double? ResumeLagP99Ms { get; set; }
    public double? ResumeLagMaxMs { get; set; }

    /// <summary>Time to attach before the dump (tcpfreeze-warm only; outside the downtime).</summary>
    public double? PreAttachMs { get; set; }

    /// <summary>CRIU's dump per TCP socket (µs): first to last "Dumping TCP connection" in its log, over the sockets between.</summary>
    public double? SocketDumpUs { get; set; }

    /// <summary>Of that, the TCP part per socket (µs): "Turning repair on" to its "Done" (repair mode on, state and queues read, image written).</summary>
    public double? SocketRepairUs { get; set; }

    /// <summary>Connections that answered again after the restore and never failed (null under ab, which cannot tell).</summary>
    public int? Survived { get; set; }
    /// <summary>Connections that failed (reset, closed, wrong reply).</summary>
    public int? Reset { get; set; }
    /// <summary>Connections that neither failed nor answered within the recovery bound.</summary>
    public int? Hung { get; set; }
    public int? Lost => Connections - Survived;

    /// <summary>Each hook invocation's own time, as the hook logged it ("pre-dump" -> ms).</summary>
    public List<(string Action, double Ms)> HookTimes { get; } = [];
    /// <summary>Each action-script run, from CRIU's log line naming the script to CRIU's next log line.</summary>
    public List<(string Action, double Ms)> ScriptTimes { get; } = [];

    /// <summary>What a CRIU run left in the namespace (nft tables, iptables rules, attached programs), and what was removed.</summary>
    public string? Leftovers { get; set; }

    public long? AbCompleteRequests { get; set; }
    public long? AbFailedRequests { get; set; }
    public double? AbSeconds { get; set; }
    public string? AbFailureBreakdown { get; set; }

    public static readonly string[] Columns =
    [
        "started_utc", "method", "connections", "run", "load", "status", "criu_exit", "dump_ms", "wait_pid_ms", "restore_ms",
        "downtime_ms", "longest_gap_ms", "survived", "lost", "reset", "hung", "pre_attach_ms", "hook_ms", "script_exec_ms",
        "ab_complete", "ab_failed", "ab_seconds", "ab_failures", "leftovers", "error",
        "copy_delay_s", "copy_gap_ms", "resume_inflight", "resume_unanswered", "resume_lag_p50_ms", "resume_lag_p99_ms", "resume_lag_max_ms",
        "resumed_before_end", "resume_held", "resume_held_p50_ms", "resume_held_p99_ms", "resume_held_max_ms",
        "socket_dump_us", "socket_repair_us",
    ];

    public string ToCsv() => string.Join(',', new object?[]
    {
        StartedUtc.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture), Method, Connections, Run, Load, Status, CriuExitCode,
        DumpMs, WaitForPidMs, RestoreMs, DowntimeMs, LongestGapMs, Survived, Lost, Reset, Hung, PreAttachMs,
        Pairs(HookTimes), Pairs(ScriptTimes), AbCompleteRequests, AbFailedRequests, AbSeconds, AbFailureBreakdown, Leftovers, Error,
        CopyDelaySeconds, CopyGapMs, ResumeInFlight, ResumeUnanswered, ResumeLagP50Ms, ResumeLagP99Ms, ResumeLagMaxMs,
        ResumedBeforeEnd, ResumeHeld, ResumeHeldP50Ms, ResumeHeldP99Ms, ResumeHeldMaxMs,
        SocketDumpUs, SocketRepairUs,
    }.Select(Field));

    private static string Pairs(List<(string Action, double Ms)> pairs)
        => string.Join(';', pairs.Select(p => $"{p.Action}={p.Ms.ToString("F1", CultureInfo.InvariantCulture)}"));

    private static string Field(object? value)
    {
        string text = value switch
        {
            null => "",
            double d => d.ToString("F1", CultureInfo.InvariantCulture),
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            _ => value.ToString() ?? "",
        };
        if (text.IndexOfAny([',', '"', '\n', '\r']) < 0)
            return text;
        var quoted = new StringBuilder("\"");
        quoted.Append(text.Replace("\"", "\"\"", StringComparison.Ordinal).Replace("\r", "", StringComparison.Ordinal).Replace('\n', ' '));
        return quoted.Append('"').ToString();
    }
}
