using System.ComponentModel;
using System.Globalization;
using System.Reflection;
using System.Text;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Reports;

namespace TcpFreeze.Benchmarks;

/// <summary>
/// One table of every lock method measured in a run, side by side: lock, unlock, and
/// lock + unlock per connection count, with the ratio to TcpFreeze's batch call measured in
/// the same run. Written next to BenchmarkDotNet's own reports as lock-cost-comparison.md.
/// </summary>
internal static class LockCostReport
{
    private const string Baseline = "TcpFreeze: Freeze(all) / Thaw(all), one batch call each";

    private sealed record Row(string Method, int Connections)
    {
        public double? Lock { get; set; }
        public double? Unlock { get; set; }
        public double? Both { get; set; }
        public double? Total => Both ?? (Lock + Unlock);
    }

    public static string? Write(IEnumerable<Summary> summaries)
    {
        var rows = new Dictionary<(string, int), Row>();
        string? directory = null;
        foreach (Summary summary in summaries)
        {
            foreach (BenchmarkReport report in summary.Reports)
            {
                var descriptor = report.BenchmarkCase.Descriptor;
                if (report.ResultStatistics is not { } statistics
                    || report.BenchmarkCase.Parameters[nameof(LockCostBenchmarks.Connections)] is not int connections)
                    continue;
                directory ??= summary.ResultsDirectoryPath;
                string family = descriptor.Type.GetCustomAttribute<DescriptionAttribute>()?.Description ?? descriptor.Type.Name;
                bool separate = typeof(LockCostBenchmarks).IsAssignableFrom(descriptor.Type);
                string method = separate ? family : $"{family}: {descriptor.WorkloadMethod.GetCustomAttribute<BenchmarkAttribute>()?.Description ?? descriptor.WorkloadMethod.Name}";
                if (!rows.TryGetValue((method, connections), out Row? row))
                    rows[(method, connections)] = row = new Row(method, connections);
                double median = statistics.Median;
                switch (separate ? descriptor.WorkloadMethod.Name : null)
                {
                    case nameof(LockCostBenchmarks.Lock): row.Lock = median; break;
                    case nameof(LockCostBenchmarks.Unlock): row.Unlock = median; break;
                    default: row.Both = median; break;
                }
            }
        }
        if (directory is null || rows.Count == 0)
            return null;

        var text = new StringBuilder();
        text.AppendLine($"# Lock cost of N connections, {DateTime.UtcNow:yyyy-MM-dd}");
        text.AppendLine();
        text.AppendLine($"Machine: kernel {Read("/proc/sys/kernel/osrelease")}, {CpuModel()}, {Environment.ProcessorCount} cores; "
            + $"{Tool("iptables", "--version")}; {Tool("nft", "--version")}.");
        text.AppendLine();
        text.AppendLine("Medians of BenchmarkDotNet's iterations. Lock and unlock are measured apart, one operation per "
            + "iteration; the rows with lock + unlock only (FreezeThawBenchmarks) measure both in one operation, many per "
            + "iteration. The ratios divide by TcpFreeze's batch calls (first row of each N) measured in this run. "
            + "A dash: not measured (over the time budget, see benchmarks/README.md).");
        text.AppendLine();
        text.AppendLine("| method | N | lock | unlock | lock + unlock | lock, x TcpFreeze | lock + unlock, x TcpFreeze |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (Row row in rows.Values.OrderBy(r => r.Connections).ThenBy(r => r.Method != Baseline).ThenBy(r => r.Total ?? r.Lock ?? double.MaxValue))
        {
            Row? baseline = rows.GetValueOrDefault((Baseline, row.Connections));
            text.AppendLine($"| {row.Method} | {row.Connections:N0} | {Time(row.Lock)} | {Time(row.Unlock)} | {Time(row.Total)} "
                + $"| {Ratio(row.Lock, baseline?.Lock)} | {Ratio(row.Total, baseline?.Total)} |");
        }

        string path = Path.Combine(directory, "lock-cost-comparison.md");
        File.WriteAllText(path, text.ToString());
        Console.WriteLine();
        Console.WriteLine(text);
        Console.WriteLine($"// written to {path}");
        return path;
    }

    private static string Ratio(double? value, double? baseline)
    {
        if (value is not { } v || baseline is not { } b || b <= 0)
            return "-";
        double ratio = v / b;
        return ratio.ToString(ratio >= 10 ? "N0" : ratio >= 1 ? "N1" : "G2", CultureInfo.InvariantCulture);
    }

    private static string Time(double? nanoseconds) => nanoseconds switch
    {
        null => "-",
        < 1e3 => $"{nanoseconds:N0} ns",
        < 1e6 => $"{nanoseconds / 1e3:N1} us",
        < 1e9 => $"{nanoseconds / 1e6:N1} ms",
        _ => $"{nanoseconds / 1e9:N2} s",
    };

    private static string Read(string path) => File.Exists(path) ? File.ReadAllText(path).Trim() : "?";

    private static string CpuModel()
        => File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "?";

    private static string Tool(string file, string argument)
    {
        try
        {
            return Commands.Run(file, [argument], timeout: TimeSpan.FromSeconds(10)).Trim();
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or TimeoutException)
        {
            return $"{file}: not found";
        }
    }
}
