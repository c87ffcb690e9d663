using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Migration;

/// <summary>
/// ApacheBench as the paper ran it: <c>ab -k -c N</c> from the client namespace, here with
/// -r (keep going after a receive error) and -s (socket timeout) longer than any lock, bounded
/// by -t; stopped with SIGINT (ab then prints its results) a few seconds after the restore.
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

    public sealed record Result(long? Complete, long? Failed, double? Seconds, string? FailureBreakdown, int ExitCode, string? Message);

    public bool HasExited => _process.HasExited;

    public static ApacheBench Start(string ns, IPEndPoint server, int concurrency, TimeSpan limit)
    {
        var info = new ProcessStartInfo("nsenter") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        // nsenter execs ab, so the PID is ab's. -t before -n: -t alone would cap the requests at 50,000; ab
        // allocates 32 bytes per request up front (calloc, touched as it goes), so -n stays at 20 million.
        foreach (string argument in new[]
                 {
                     $"--net=/run/netns/{ns}", "ab", "-k", "-r", "-s", "900", "-c", Invariant(concurrency),
                     "-t", Invariant((int)limit.TotalSeconds), "-n", "20000000", $"http://{server}/ab",
                 })
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
        return new Result(Number(output, "Complete requests:"), Number(output, "Failed requests:"),
            Number(output, "Time taken for tests:") is { } t ? t / 1000.0 : null, breakdown, _process.ExitCode, message);
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
