using System.Globalization;
using System.Text.RegularExpressions;

namespace TcpFreeze.Migration;

/// <summary>
/// Reads CRIU 4.2.1's -v4 log (dump.log / restore.log, after CRIU's own output). Lines carry
/// "(SS.uuuuuu)" since CRIU's start; an action script is announced as "Running ACTION scripts"
/// and then "\t[PATH]" just before CRIU forks it, and the script's stderr goes into the log
/// without a timestamp.
/// </summary>
internal static partial class CriuLog
{
    // CRIU's own lines; the restored tasks' "pie: PID: ..." lines interleave and are skipped.
    [GeneratedRegex(@"^\((?<s>\d+\.\d+)\)\s+(?!pie: )")]
    private static partial Regex Timestamp();

    [GeneratedRegex(@"Running (?<action>[a-z-]+) scripts$")]
    private static partial Regex RunningScripts();

    [GeneratedRegex(@"^\(\d+\.\d+\)\s+(?:\d+: )?\t\[(?<path>.+)\]$")]
    private static partial Regex ScriptStart();

    // "tcpfreeze-hook: pre-dump: froze 500 connections ... in 12.3 ms (attach 3.1 ms, ...)",
    // "tcpfreeze-hook: post-dump: no connection appeared since pre-dump (0.4 ms); ..."
    [GeneratedRegex(@"tcpfreeze-hook: (?<action>[a-z-]+): .*?(?:\bin |\()(?<ms>\d+(?:\.\d+)?) ms")]
    private static partial Regex HookLine();

    /// <summary>Each hook invocation's own time, in log order.</summary>
    public static List<(string Action, double Ms)> HookTimes(string log)
        => Lines(log).Select(l => HookLine().Match(l)).Where(m => m.Success)
            .Select(m => (m.Groups["action"].Value, double.Parse(m.Groups["ms"].Value, CultureInfo.InvariantCulture)))
            .ToList();

    /// <summary>
    /// Each run of <paramref name="script"/>: from the log line naming it (just before the
    /// fork) to CRIU's next timestamped line (just after the wait). That is the script's
    /// start-to-exit time plus CRIU's fork and wait, an upper bound within microseconds.
    /// The last script of a log (post-resume) has no next line and is not reported.
    /// </summary>
    public static List<(string Action, double Ms)> ScriptTimes(string log, string script)
    {
        var times = new List<(string, double)>();
        string action = "?";
        double? started = null;
        foreach (string line in Lines(log))
        {
            Match stamp = Timestamp().Match(line);
            if (!stamp.Success)
                continue;
            double seconds = double.Parse(stamp.Groups["s"].Value, CultureInfo.InvariantCulture);
            if (started is { } start)
            {
                times.Add((action, (seconds - start) * 1000));
                started = null;
            }
            if (RunningScripts().Match(line) is { Success: true } running)
                action = running.Groups["action"].Value;
            else if (ScriptStart().Match(line) is { Success: true } s && s.Groups["path"].Value == script)
                started = seconds;
        }
        return times;
    }

    /// <summary>
    /// CRIU's own dump time per TCP socket: from the first to the last "Dumping TCP connection"
    /// line, divided by the sockets between them, and the mean of each socket's TCP part, from
    /// "Turning repair on" to the next "Done" (repair mode, libsoccr's save, the tcp-stream image).
    /// Null with fewer than two sockets.
    /// </summary>
    public static (int Sockets, double PerSocketUs, double RepairUs)? SocketDump(string log)
    {
        int sockets = 0, repaired = 0;
        double first = 0, last = 0, repairTotal = 0;
        double? repairStart = null;
        foreach (string line in Lines(log))
        {
            Match stamp = Timestamp().Match(line);
            if (!stamp.Success)
                continue;
            double seconds = double.Parse(stamp.Groups["s"].Value, CultureInfo.InvariantCulture);
            if (line.EndsWith("tcp: Dumping TCP connection", StringComparison.Ordinal))
            {
                if (sockets++ == 0)
                    first = seconds;
                last = seconds;
            }
            else if (line.Contains("tcp: \tTurning repair on", StringComparison.Ordinal))
                repairStart = seconds;
            else if (repairStart is { } start && line.EndsWith("tcp: Done", StringComparison.Ordinal))
            {
                repairTotal += seconds - start;
                repaired++;
                repairStart = null;
            }
        }
        return sockets < 2 ? null : (sockets, (last - first) * 1e6 / (sockets - 1), repaired == 0 ? 0 : repairTotal * 1e6 / repaired);
    }
    /// <summary>CRIU's own span: the last timestamp of its log (seconds since it started), in ms; null without one.</summary>
    public static double? SpanMs(string log)
        => Lines(log).Select(l => Timestamp().Match(l)).LastOrDefault(m => m.Success) is { } last
            ? double.Parse(last.Groups["s"].Value, CultureInfo.InvariantCulture) * 1000
            : null;

    /// <summary>How many of CRIU's lines contain <paramref name="text"/> (e.g. "Dumping TCP connection").</summary>
    public static int Count(string log, string text) => Lines(log).Count(l => l.Contains(text, StringComparison.Ordinal));

    /// <summary>The line that best says why CRIU failed: a libc abort, CRIU's first error, or the last line.</summary>
    public static string? ErrorLine(string log)
    {
        string[] lines = Lines(log).ToArray();
        return lines.FirstOrDefault(l => l.StartsWith("*** ", StringComparison.Ordinal))
               ?? lines.FirstOrDefault(l => l.Contains("Error (", StringComparison.Ordinal) && !l.Contains("RLIMIT_NOFILE", StringComparison.Ordinal)
                                            && !l.Contains("Can't get rlimit", StringComparison.Ordinal))
               ?? lines.LastOrDefault();
    }

    private static IEnumerable<string> Lines(string log)
        => log.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0);
}
