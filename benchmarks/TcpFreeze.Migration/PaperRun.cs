using System.Globalization;
using System.Text;

namespace TcpFreeze.Migration;

/// <summary>
/// One run of the paper's experiment (--paper): checkpoint and restore of nginx under ApacheBench, with the CPU time
/// of each command's process tree by process kind. One CSV row; the report reads every paper-*.csv of its folder back,
/// so that runs made in several chunks (one concurrency level at a time) make one report.
/// </summary>
internal sealed record PaperRun
{
    public required string Method { get; init; }
    public required int Concurrency { get; init; }
    public required int Run { get; init; }
    public DateTime StartedUtc { get; init; } = DateTime.UtcNow;
    public string Status { get; set; } = RunResult.StatusError;
    public string? Error { get; set; }

    /// <summary>Wall time of each criu command as the harness saw it (includes perf's start and stop).</summary>
    public double? CheckpointWallMs { get; set; }
    public double? RestoreWallMs { get; set; }
    /// <summary>CRIU's own span: its log's last timestamp (seconds since CRIU started).</summary>
    public double? CheckpointCriuMs { get; set; }
    public double? RestoreCriuMs { get; set; }
    public double? WaitForPidMs { get; set; }
    /// <summary>TCP connections CRIU dumped (its "Dumping TCP connection" lines) and restored.</summary>
    public int? DumpedConnections { get; set; }
    public int? RestoredConnections { get; set; }

    /// <summary>CPU ms by <see cref="PerfBreakdown.Categories"/>, checkpoint and restore; "other" process names beside them.</summary>
    public Dictionary<string, double> CheckpointCpu { get; init; } = [];
    public Dictionary<string, double> RestoreCpu { get; init; } = [];
    public string? CheckpointOther { get; set; }
    public string? RestoreOther { get; set; }
    public string? PerfError { get; set; }

    public long? AbComplete { get; set; }
    public long? AbFailed { get; set; }
    public long? AbConnectFailures { get; set; }
    public long? AbReceiveFailures { get; set; }
    public long? AbLengthFailures { get; set; }
    public long? AbExceptions { get; set; }
    public long? AbNon2xx { get; set; }
    public long? AbLongestMs { get; set; }
    public int? AbResets { get; set; }
    public bool? AbAborted { get; set; }
    public double? AbSeconds { get; set; }
    public string? AbMessage { get; set; }

    public string? HookTimes { get; set; }
    public string? Leftovers { get; set; }

    /// <summary>Figure 2's total: checkpoint + restore, each CRIU's own span.</summary>
    public double? TotalMs => CheckpointCriuMs + RestoreCriuMs;

    private static readonly string[] Scalars =
    [
        "started_utc", "method", "concurrency", "run", "status", "checkpoint_wall_ms", "restore_wall_ms", "checkpoint_span_ms", "restore_span_ms",
        "wait_pid_ms", "dumped_connections", "restored_connections",
    ];

    private static readonly string[] Tail =
    [
        "checkpoint_other", "restore_other", "perf_error", "ab_complete", "ab_failed", "ab_connect", "ab_receive", "ab_length", "ab_exceptions",
        "ab_non2xx", "ab_longest_ms", "ab_resets", "ab_aborted", "ab_seconds", "ab_message", "hook_ms", "leftovers", "error",
    ];

    public static string[] Columns { get; } =
    [
        .. Scalars,
        .. PerfBreakdown.Categories.Select(c => $"checkpoint_cpu_{c}_ms"),
        .. PerfBreakdown.Categories.Select(c => $"restore_cpu_{c}_ms"),
        .. Tail,
    ];

    public string ToCsv() => string.Join(',', new object?[]
    {
        StartedUtc.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture), Method, Concurrency, Run, Status, CheckpointWallMs, RestoreWallMs,
        CheckpointCriuMs, RestoreCriuMs, WaitForPidMs, DumpedConnections, RestoredConnections,
    }.Concat(PerfBreakdown.Categories.Select(c => (object?)(CheckpointCpu.TryGetValue(c, out double v) ? v : null)))
     .Concat(PerfBreakdown.Categories.Select(c => (object?)(RestoreCpu.TryGetValue(c, out double v) ? v : null)))
     .Concat(new object?[]
     {
         CheckpointOther, RestoreOther, PerfError, AbComplete, AbFailed, AbConnectFailures, AbReceiveFailures, AbLengthFailures, AbExceptions,
         AbNon2xx, AbLongestMs, AbResets, AbAborted, AbSeconds, AbMessage, HookTimes, Leftovers, Error,
     }).Select(Field));

    /// <summary>Reads the rows of a file this class wrote (by column name, so older files with fewer columns still read).</summary>
    public static IEnumerable<PaperRun> ReadCsv(string path)
    {
        string[] lines = File.ReadAllLines(path);
        if (lines.Length == 0)
            yield break;
        string[] header = Split(lines[0]);
        foreach (string line in lines.Skip(1).Where(l => l.Length > 0))
        {
            string[] cells = Split(line);
            string? Get(string column) => Array.IndexOf(header, column) is var i and >= 0 && i < cells.Length && cells[i].Length > 0 ? cells[i] : null;
            double? D(string column) => Get(column) is { } s ? double.Parse(s, CultureInfo.InvariantCulture) : null;
            long? L(string column) => Get(column) is { } s ? long.Parse(s, CultureInfo.InvariantCulture) : null;
            var run = new PaperRun
            {
                Method = Get("method") ?? "?",
                Concurrency = (int)(L("concurrency") ?? 0),
                Run = (int)(L("run") ?? 0),
                StartedUtc = DateTime.Parse(Get("started_utc") ?? "2000-01-01", CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal),
                Status = Get("status") ?? RunResult.StatusError,
                CheckpointWallMs = D("checkpoint_wall_ms"), RestoreWallMs = D("restore_wall_ms"),
                CheckpointCriuMs = D("checkpoint_span_ms"), RestoreCriuMs = D("restore_span_ms"), WaitForPidMs = D("wait_pid_ms"),
                DumpedConnections = (int?)L("dumped_connections"), RestoredConnections = (int?)L("restored_connections"),
                CheckpointOther = Get("checkpoint_other"), RestoreOther = Get("restore_other"), PerfError = Get("perf_error"),
                AbComplete = L("ab_complete"), AbFailed = L("ab_failed"), AbConnectFailures = L("ab_connect"), AbReceiveFailures = L("ab_receive"),
                AbLengthFailures = L("ab_length"), AbExceptions = L("ab_exceptions"), AbNon2xx = L("ab_non2xx"), AbLongestMs = L("ab_longest_ms"),
                AbResets = (int?)L("ab_resets"), AbAborted = Get("ab_aborted") is { } a ? bool.Parse(a) : null, AbSeconds = D("ab_seconds"),
                AbMessage = Get("ab_message"), HookTimes = Get("hook_ms"), Leftovers = Get("leftovers"), Error = Get("error"),
            };
            foreach (string c in PerfBreakdown.Categories)
            {
                if (D($"checkpoint_cpu_{c}_ms") is { } cp)
                    run.CheckpointCpu[c] = cp;
                if (D($"restore_cpu_{c}_ms") is { } rs)
                    run.RestoreCpu[c] = rs;
            }
            yield return run;
        }
    }

    private static string Field(object? value)
    {
        string text = value switch
        {
            null => "",
            double d => d.ToString("F1", CultureInfo.InvariantCulture),
            bool b => b ? "true" : "false",
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            _ => value.ToString() ?? "",
        };
        text = text.Replace("\r", "", StringComparison.Ordinal).Replace('\n', ' ');
        return text.IndexOfAny([',', '"']) < 0 ? text : "\"" + text.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
    }

    /// <summary>One CSV line into its fields (quotes as <see cref="Field"/> writes them; no line breaks inside fields).</summary>
    public static string[] Split(string line)
    {
        var fields = new List<string>();
        var field = new StringBuilder();
        bool quoted = false;
        for (int i = 0; i < line.Length; i++)
        {
            char c = line[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < line.Length && line[i + 1] == '"')
                {
                    field.Append('"');
                    i++;
                }
                else if (c == '"')
                    quoted = false;
                else
                    field.Append(c);
            }
            else if (c == '"')
                quoted = true;
            else if (c == ',')
            {
                fields.Add(field.ToString());
                field.Clear();
            }
            else
                field.Append(c);
        }
        fields.Add(field.ToString());
        return fields.ToArray();
    }
}
