using System.Globalization;

namespace TcpFreeze.Migration;

/// <summary>
/// CRIU's iptables lock beyond the counts that were measured: its downtime grows with the square of
/// the connections (each rule insert and delete walks the rules already there), 287 s at 3,000 here,
/// so 10,000 would take most of an hour. This fits downtime = b·N + c·N² (least squares, through the
/// origin) to the medians of earlier runs' CSVs (--fit-iptables), and the report and the plot show
/// the fit as a fit, never as a measurement.
/// </summary>
internal sealed record IptablesFit(double PerConnectionMs, double PerConnectionSquaredMs, IReadOnlyList<(int Connections, double DowntimeMs, string Source)> Points)
{
    public double DowntimeMs(int connections) => PerConnectionMs * connections + PerConnectionSquaredMs * connections * (double)connections;

    /// <summary>Fits the medians of the successful iptables runs with N &gt; 0 in <paramref name="csvFiles"/>; null with fewer than two counts.</summary>
    public static IptablesFit? FromCsv(IEnumerable<string> csvFiles)
    {
        var rows = new List<(int N, double Ms, string Source)>();
        foreach (string file in csvFiles)
        {
            string[] lines = File.ReadAllLines(file);
            if (lines.Length < 2)
                continue;
            string[] header = SplitCsv(lines[0]);
            int method = Array.IndexOf(header, "method"), n = Array.IndexOf(header, "connections"), status = Array.IndexOf(header, "status"), downtime = Array.IndexOf(header, "downtime_ms");
            if (method < 0 || n < 0 || status < 0 || downtime < 0)
                continue;
            foreach (string line in lines.Skip(1))
            {
                string[] f = SplitCsv(line);
                if (f.Length > downtime && f[method] == LockMethod.Iptables.Name && f[status] == RunResult.StatusOk
                    && int.TryParse(f[n], CultureInfo.InvariantCulture, out int count) && count > 0
                    && double.TryParse(f[downtime], CultureInfo.InvariantCulture, out double ms))
                    rows.Add((count, ms, Path.GetFileName(file)));
            }
        }
        var points = rows.GroupBy(r => r.N).OrderBy(g => g.Key)
            .Select(g => (g.Key, Report.Median(g.Select(r => (double?)r.Ms))!.Value, string.Join(", ", g.Select(r => r.Source).Distinct())))
            .ToList();
        if (points.Count < 2)
            return null;
        // Normal equations of y = b x + c x^2.
        double s2 = 0, s3 = 0, s4 = 0, sy1 = 0, sy2 = 0;
        foreach ((int x, double y, _) in points)
        {
            double x1 = x, x2 = x1 * x1;
            s2 += x2; s3 += x2 * x1; s4 += x2 * x2; sy1 += y * x1; sy2 += y * x2;
        }
        double det = s2 * s4 - s3 * s3;
        return new IptablesFit((sy1 * s4 - sy2 * s3) / det, (s2 * sy2 - s3 * sy1) / det, points);
    }

    public string Formula => string.Create(CultureInfo.InvariantCulture,
        $"downtime ≈ {PerConnectionMs:F2} ms · N + {PerConnectionSquaredMs * 1000:F3} µs · N²");

    private static string[] SplitCsv(string line)
    {
        var fields = new List<string>();
        var current = new System.Text.StringBuilder();
        bool quoted = false;
        for (int i = 0; i < line.Length; i++)
        {
            char c = line[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < line.Length && line[i + 1] == '"')
                    current.Append(line[++i]);
                else if (c == '"')
                    quoted = false;
                else
                    current.Append(c);
            }
            else if (c == '"')
                quoted = true;
            else if (c == ',')
            {
                fields.Add(current.ToString());
                current.Clear();
            }
            else
                current.Append(c);
        }
        fields.Add(current.ToString());
        return [.. fields];
    }
}
