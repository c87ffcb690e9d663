using ScottPlot;

namespace TcpFreeze.Migration;

/// <summary>Median downtime against connections (or any series of seconds against a count), one line per method (and copy delay, when a run has several), log scale (ScottPlot renders headless through SkiaSharp).</summary>
internal static class DowntimePlot
{
    public static void Save(IReadOnlyList<RunResult> results, IReadOnlyList<LockMethod> methods, string basePath, string subtitle, IptablesFit? fit = null)
    {
        var series = new List<Series>();
        int[] delays = results.Select(r => r.CopyDelaySeconds).Distinct().Order().ToArray();
        foreach ((int delay, LockMethod method) in delays.SelectMany(d => methods.Select(m => (d, m))))
        {
            string name = delays.Length > 1 ? $"{method.Name}, copy {delay} s" : method.Name;
            var points = results.Where(r => r.Method == method.Name && r.CopyDelaySeconds == delay && r.Status == RunResult.StatusOk && r.DowntimeMs is not null)
                .GroupBy(r => r.Connections)
                .Select(g => (X: (double)g.Key, Seconds: Report.Median(g.Select(r => r.DowntimeMs))!.Value / 1000))
                .OrderBy(p => p.X)
                .ToArray();
            int failedCounts = results.Where(r => r.Method == method.Name && r.CopyDelaySeconds == delay).GroupBy(r => r.Connections)
                .Count(g => g.All(r => r.Status != RunResult.StatusOk));
            series.Add(new Series(failedCounts > 0 ? $"{name} (no successful run at {failedCounts} count(s))" : name, points));
        }
        int maxN = results.Select(r => r.Connections).Where(n => n > 0).DefaultIfEmpty(0).Max();
        Save(series, basePath, subtitle, "CRIU migration of nginx: criu dump start to criu restore end (median)", "downtime (s, log scale)", "connections",
            fit, maxN);
    }

    /// <summary>One line of a plot: its legend and its points (x, seconds); Dashed for a reference line (e.g. a paper's figures).</summary>
    public sealed record Series(string Name, (double X, double Seconds)[] Points, bool Dashed = false);

    /// <summary>Seconds against x, one line per series, log scale; with <paramref name="fit"/>, its curve up to <paramref name="maxN"/> connections.</summary>
    public static void Save(IReadOnlyList<Series> series, string basePath, string subtitle, string title, string yLabel, string xLabel,
        IptablesFit? fit = null, int maxN = 0)
    {
        var plot = new Plot();
        double lowest = double.MaxValue, highest = double.MinValue;
        foreach (Series line in series)
        {
            (double X, double Seconds)[] points = line.Points;
            if (points.Length == 0)
                continue;
            lowest = Math.Min(lowest, points.Min(p => p.Seconds));
            highest = Math.Max(highest, points.Max(p => p.Seconds));
            var scatter = plot.Add.Scatter(points.Select(p => p.X).ToArray(), points.Select(p => Math.Log10(p.Seconds)).ToArray());
            scatter.LegendText = line.Name;
            scatter.LineWidth = 2;
            scatter.MarkerSize = 7;
            if (line.Dashed)
            {
                scatter.LinePattern = LinePattern.Dashed;
                scatter.Color = Colors.Black;
            }
        }

        if (fit is not null && maxN > 0)
        {
            // A fit, not a measurement: dashed, and its measured points drawn apart.
            double[] xs = Enumerable.Range(1, 40).Select(i => maxN * i / 40.0).ToArray();
            var line = plot.Add.Scatter(xs, xs.Select(x => Math.Log10(fit.DowntimeMs((int)x) / 1000)).ToArray());
            line.LegendText = $"iptables: fit b·N + c·N² of runs at {string.Join(", ", fit.Points.Select(p => p.Connections.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)))} (not measured here)";
            line.LinePattern = LinePattern.Dashed;
            line.MarkerSize = 0;
            line.LineWidth = 2;
            var measured = plot.Add.Scatter(fit.Points.Select(p => (double)p.Connections).ToArray(), fit.Points.Select(p => Math.Log10(p.DowntimeMs / 1000)).ToArray());
            measured.LegendText = "iptables, earlier runs (medians)";
            measured.LineWidth = 0;
            measured.MarkerSize = 8;
            lowest = Math.Min(lowest, fit.Points.Min(p => p.DowntimeMs) / 1000);
            highest = Math.Max(highest, fit.DowntimeMs(maxN) / 1000);
        }

        var ticks = new ScottPlot.TickGenerators.NumericAutomatic
        {
            MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
            IntegerTicksOnly = true,
            LabelFormatter = y => FormatSeconds(Math.Pow(10, y)),
        };
        plot.Axes.Left.TickGenerator = ticks;
        plot.Axes.Left.Label.Text = yLabel;
        plot.Axes.Bottom.Label.Text = xLabel;
        plot.Axes.Title.Label.Text = title;
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { LabelFormatter = x => x.ToString("N0", System.Globalization.CultureInfo.InvariantCulture) };
        if (lowest <= highest)
            plot.Axes.SetLimitsY(Math.Floor(Math.Log10(lowest)) - 0.05, Math.Ceiling(Math.Log10(highest)) + 0.05); // decades, with their labels inside
        plot.Legend.Alignment = Alignment.UpperLeft;
        plot.ShowLegend();
        plot.Add.Annotation(subtitle, Alignment.LowerRight);

        plot.SavePng(basePath + ".png", 900, 560);
        plot.SaveSvg(basePath + ".svg", 900, 560);
    }

    private static string FormatSeconds(double seconds) => seconds.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture);
}
