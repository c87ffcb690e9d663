using ScottPlot;

namespace TcpFreeze.Migration;

/// <summary>Median downtime against connections, one line per method (and copy delay, when a run has several), log scale (ScottPlot renders headless through SkiaSharp).</summary>
internal static class DowntimePlot
{
    public static void Save(IReadOnlyList<RunResult> results, IReadOnlyList<LockMethod> methods, string basePath, string subtitle)
    {
        var plot = new Plot();
        double lowest = double.MaxValue, highest = double.MinValue;
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
            if (points.Length == 0)
                continue;
            lowest = Math.Min(lowest, points.Min(p => p.Seconds));
            highest = Math.Max(highest, points.Max(p => p.Seconds));
            var scatter = plot.Add.Scatter(points.Select(p => p.X).ToArray(), points.Select(p => Math.Log10(p.Seconds)).ToArray());
            scatter.LegendText = failedCounts > 0 ? $"{name} (no successful run at {failedCounts} count(s))" : name;
            scatter.LineWidth = 2;
            scatter.MarkerSize = 7;
        }

        var ticks = new ScottPlot.TickGenerators.NumericAutomatic
        {
            MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
            IntegerTicksOnly = true,
            LabelFormatter = y => FormatSeconds(Math.Pow(10, y)),
        };
        plot.Axes.Left.TickGenerator = ticks;
        plot.Axes.Left.Label.Text = "downtime (s, log scale)";
        plot.Axes.Bottom.Label.Text = "connections";
        plot.Axes.Title.Label.Text = "CRIU migration of nginx: criu dump start to criu restore end (median)";
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
