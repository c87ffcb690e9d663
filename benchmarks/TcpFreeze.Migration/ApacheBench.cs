using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Migration;

/// <summary>
/// ApacheBench from the client namespace: <c>ab -k -c N</c> (keep-alive, <c>--ab</c>) or, as the paper
/// ran it, <c>ab -c N</c> with a new connection per request (<c>--paper</c>); with -r (keep going after a
/// receive error) and -s (socket timeout) longer than any lock, bounded by -t; stopped with SIGINT (ab
/// then prints its results) a few seconds after the restore.
/// </summary>
internal sealed partial class ApacheBench : IDisposable
{
    private readonly Process _process;
    private readonly Task<string> _output;
    private readonly Task<string> _error;

    private ApacheBench(Process process)
    {
        _process = process;
        _output = process.StandardOutput.ReadToEndAsync();
        _error = process.StandardError.ReadToEndAsync();
    }

    /// <param name="LongestMs">ab's "100% ... (longest request)": the longest connect-to-reply time of a completed request.</param>
    /// <param name="Resets">How many times ab's stderr says a connection was reset ("Connection reset by peer (104)").</param>
    /// <param name="Aborted">ab gave up ("Test aborted after 10 failures": connect errors such as a refused SYN).</param>
    public sealed record Result(long? Complete, long? Failed, double? Seconds, string? FailureBreakdown, int ExitCode, string? Message,
        long? LongestMs = null, long? ConnectFailures = null, long? ReceiveFailures = null, long? LengthFailures = null,
        long? ExceptionFailures = null, long? Non2xx = null, int Resets = 0, bool Aborted = false);

    public bool HasExited => _process.HasExited;

    /// <param name="keepAlive">-k: one connection per concurrent client for all its requests; false: a new connection per request (the paper).</param>
    /// <param name="requests">-n: ab ends after this many requests (or at -t <paramref name="limit"/>, or when stopped).</param>
    /// <param name="path">The URL path to request.</param>
    public static ApacheBench Start(string ns, IPEndPoint server, int concurrency, TimeSpan limit, bool keepAlive = true, int requests = 20_000_000,
        string path = "/ab")
    {
        var info = new ProcessStartInfo("nsenter") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        // nsenter execs ab, so the PID is ab's. -t before -n: -t alone would cap the requests at 50,000; ab
        // allocates 32 bytes per request up front (calloc, touched as it goes), so -n stays at 20 million.
        foreach (string? argument in new[]
                 {
                     $"--net=/run/netns/{ns}", "ab", keepAlive ? "-k" : null, "-r", "-s", "900", "-c", Invariant(concurrency),
                     "-t", Invariant((int)limit.TotalSeconds), "-n", Invariant(requests), $"http://{server}{path}",
                 })
            if (argument is not null)
                info.ArgumentList.Add(argument);
        return new ApacheBench(Process.Start(info) ?? throw new InvalidOperationException("could not start ab"));
    }

    /// <summary>Stops ab with SIGINT (it prints its results) and parses them.</summary>
    public Result Stop()
    {
        if (!_process.HasExited)
            Run.Capture("kill", "-INT", Invariant(_process.Id));
        if (!_process.WaitForExit(TimeSpan.FromSeconds(30)))
            _process.Kill();
        _process.WaitForExit();
        string output = _output.Result, error = _error.Result;
        string? breakdown = FailureBreakdown().Match(output) is { Success: true } m ? m.Groups[1].Value.Trim() : null;
        string? message = error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault();
        Match parts = FailureParts().Match(breakdown ?? "");
        long? Part(string name) => parts.Success ? long.Parse(parts.Groups[name].Value, CultureInfo.InvariantCulture) : Number(output, "Failed requests:") is 0 ? 0 : null;
        long? longest = Longest().Match(output) is { Success: true } l ? long.Parse(l.Groups[1].Value, CultureInfo.InvariantCulture) : null;
        int resets = error.Split('\n').Count(line => line.Contains("Connection reset by peer", StringComparison.Ordinal));
        bool aborted = error.Contains("Test aborted after", StringComparison.Ordinal);
        return new Result(Number(output, "Complete requests:"), Number(output, "Failed requests:"),
            Number(output, "Time taken for tests:") is { } t ? t / 1000.0 : null, breakdown, _process.ExitCode, message,
            longest, Part("connect"), Part("receive"), Part("length"), Part("exceptions"), Number(output, "Non-2xx responses:") ?? 0, resets, aborted);
    }

    // Whole numbers only, except "Time taken for tests: 12.345 seconds", returned in ms.
    private static long? Number(string output, string label)
    {
        string? line = output.Split('\n').FirstOrDefault(l => l.StartsWith(label, StringComparison.Ordinal));
        if (line is null)
            return null;
        string value = line[label.Length..].Trim().Split(' ')[0];
        return double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double d)
            ? label.StartsWith("Time", StringComparison.Ordinal) ? (long)(d * 1000) : (long)d
            : null;
    }

    [GeneratedRegex(@"^\s+\((Connect: .*)\)\s*$", RegexOptions.Multiline)]
    private static partial Regex FailureBreakdown();

    [GeneratedRegex(@"Connect: (?<connect>\d+), Receive: (?<receive>\d+), Length: (?<length>\d+), Exceptions: (?<exceptions>\d+)")]
    private static partial Regex FailureParts();

    [GeneratedRegex(@"^\s*100%\s+(\d+) \(longest request\)", RegexOptions.Multiline)]
    private static partial Regex Longest();

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
                _process.Kill();
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
    }
}
