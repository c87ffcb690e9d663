using System.Globalization;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Migration;

/// <summary>
/// CPU time of one CRIU command and every process it starts (sh, iptables, the hook; at restore also the tasks it
/// forks, which run CRIU's restorer as "criu" until they take their own name), sampled by
/// <c>perf record -e task-clock -c 200000</c> wrapped around the command: one sample per 200 µs of CPU time a process
/// of the tree uses, each carrying the process's name, so samples x 200 µs is its CPU time. This is the paper's own
/// method (perf attributing time to processes), and the sum over the tree is the CPU time of the checkpoint or restore,
/// which on an otherwise idle 2-vCPU VM running one process at a time is close to its wall time.
/// </summary>
internal static class PerfBreakdown
{
    /// <summary>Nanoseconds of task-clock per sample.</summary>
    public const long PeriodNs = 200_000;

    public const string Criu = "criu", Iptables = "iptables", Shell = "sh", Hook = "hook", Other = "other";

    public static readonly string[] Categories = [Criu, Iptables, Shell, Hook, Other];

    /// <summary>The command line to run CRIU under (CriuRunner.Wrapper); no build-id pass at the end (it would read the whole file).</summary>
    public static string[] Wrapper(string dataFile)
        => ["perf", "record", "-q", "-B", "-N", "-o", dataFile, "-e", "task-clock", "-c", PeriodNs.ToString(CultureInfo.InvariantCulture), "--"];

    /// <summary>Milliseconds of CPU per category, and the names counted as "other" with their ms (e.g. "nginx 3.2, nsenter 0.4").</summary>
    public sealed record Times(IReadOnlyDictionary<string, double> Ms, long Samples, string OtherNames)
    {
        public double this[string category] => Ms.GetValueOrDefault(category);
        public double Total => Ms.Values.Sum();
    }

    /// <summary>Reads a perf.data file with <c>perf script</c>; null when perf failed (the reason in <paramref name="error"/>).</summary>
    public static Times? Read(string dataFile, out string? error)
    {
        error = null;
        if (!File.Exists(dataFile))
        {
            error = $"{dataFile} was not written";
            return null;
        }
        (int code, string output, string stderr) = Run.Capture("perf", ["script", "-i", dataFile, "-F", "comm,pid,tid,period"], null, TimeSpan.FromMinutes(5));
        if (code != 0)
        {
            error = $"perf script exited {code}: {stderr.Trim()}";
            return null;
        }
        return Parse(output);
    }

    /// <summary>
    /// Lines "COMM PID/TID PERIOD" (COMM may contain spaces). A thread other than the main one (the .NET runtime's, in
    /// the hook) counts for its process: the name its main thread had last.
    /// </summary>
    public static Times Parse(string script)
    {
        var samples = new List<(string Comm, int Pid, int Tid, long Period)>();
        var mainName = new Dictionary<int, string>();
        foreach (string raw in script.Split('\n'))
        {
            string[] words = raw.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (words.Length < 3 || words[^2].Split('/') is not [var p, var t]
                || !int.TryParse(p, out int pid) || !int.TryParse(t, out int tid)
                || !long.TryParse(words[^1], NumberStyles.None, CultureInfo.InvariantCulture, out long period))
                continue;
            string comm = string.Join(' ', words[..^2]);
            samples.Add((comm, pid, tid, period));
            if (pid == tid)
                mainName[pid] = comm;
        }
        var ns = new Dictionary<string, long>();
        var others = new Dictionary<string, long>();
        foreach ((string comm, int pid, int tid, long period) in samples)
        {
            string name = pid == tid ? comm : mainName.GetValueOrDefault(pid, comm);
            string category = Category(name);
            ns[category] = ns.GetValueOrDefault(category) + period;
            if (category == Other)
                others[name] = others.GetValueOrDefault(name) + period;
        }
        string otherNames = string.Join(", ", others.OrderByDescending(o => o.Value).Take(5)
            .Select(o => $"{o.Key} {(o.Value / 1e6).ToString("F1", CultureInfo.InvariantCulture)}"));
        return new Times(ns.ToDictionary(kv => kv.Key, kv => kv.Value / 1e6), samples.Count, otherNames);
    }

    /// <summary>The category of a process name (the kernel's comm: at most 15 characters).</summary>
    public static string Category(string comm) => comm switch
    {
        "criu" => Criu,
        "sh" or "dash" or "bash" => Shell,
        _ when comm.StartsWith("iptables", StringComparison.Ordinal) || comm.StartsWith("ip6tables", StringComparison.Ordinal)
               || comm.StartsWith("xtables", StringComparison.Ordinal) => Iptables,
        _ when comm.StartsWith("tcpfreeze", StringComparison.Ordinal) => Hook,
        _ => Other,
    };
}
