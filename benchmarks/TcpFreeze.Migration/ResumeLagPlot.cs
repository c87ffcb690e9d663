using ScottPlot;

namespace TcpFreeze.Migration;

/// <summary>
/// Resume lag (restore end to the answer of each in-flight request) against copy delay: per method a p50 line
/// (solid) and a p99 line (dashed) in one colour, medians of the runs, log scale. With several connection counts,
/// one pair of lines per method and count.
/// </summary>
internal static class ResumeLagPlot
{
    /// <summary>Lags below this (in s) are drawn at it: the log scale has no zero.</summary>
    private const double Floor = 0.001;

    /// <summary>Saves basePath.png and .svg; false (nothing written) when no run measured a resume lag.</summary>
    public static bool Save(IReadOnlyList<RunResult> results, IReadOnlyList<LockMethod> methods, string basePath, string subtitle)
    {
        // A run with nothing in flight but connections that resumed before the restore's end: lag at most 0, drawn at the floor.
        List<RunResult> measured = results.Where(r => r.Status == RunResult.StatusOk &&
                                                      (r.ResumeLagP50Ms is not null || (r.ResumeInFlight == 0 && r.ResumedBeforeEnd > 0))).ToList();
        if (measured.Count == 0)
            return false;
        int[] counts = measured.Select(r => r.Connections).Distinct().Order().ToArray();
        var plot = new Plot();
        double lowest = double.MaxValue, highest = double.MinValue;
        int series = 0;
        foreach (int n in counts)
            foreach (LockMethod method in methods)
            {
                var runs = measured.Where(r => r.Method == method.Name && r.Connections == n).GroupBy(r => r.CopyDelaySeconds).OrderBy(g => g.Key).ToArray();
                if (runs.Length == 0)
                    continue;
                double[] x = runs.Select(g => (double)g.Key).ToArray();
                Color color = plot.Add.Palette.GetColor(series++);
                string name = counts.Length > 1 ? $"{method.Name}, {n:N0} connections" : method.Name;
                foreach ((string quantile, Func<RunResult, double?> value, bool dashed) in new (string, Func<RunResult, double?>, bool)[]
                         { ("p50", r => r.ResumeLagP50Ms, false), ("p99", r => r.ResumeLagP99Ms, true) })
                {
                    double[] seconds = runs.Select(g => Math.Max(Floor, (Report.Median(g.Select(r => (double?)(value(r) ?? 0))) ?? 0) / 1000)).ToArray();
                    lowest = Math.Min(lowest, seconds.Min());
                    highest = Math.Max(highest, seconds.Max());
                    var scatter = plot.Add.Scatter(x, seconds.Select(Math.Log10).ToArray());
                    scatter.Color = color;
                    scatter.LegendText = $"{name} {quantile}";
                    scatter.LineWidth = 2;
                    scatter.MarkerSize = 7;
                    if (dashed)
                    {
                        scatter.LinePattern = LinePattern.Dashed;
                        scatter.MarkerShape = MarkerShape.OpenCircle;
                    }
                }
            }

        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
        {
            MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
            IntegerTicksOnly = true,
            LabelFormatter = y => Math.Pow(10, y).ToString("0.###", System.Globalization.CultureInfo.InvariantCulture),
        };
        plot.Axes.Left.Label.Text = "resume lag (s, log scale)";
        plot.Axes.Bottom.Label.Text = "copy delay: dump end to restore start (s)";
        plot.Axes.Title.Label.Text = "Restore end to the answer of each request in flight (median of runs; p50 solid, p99 dashed)";
        plot.Add.Annotation($"{Floor * 1000:0} ms: all answered before the restore's end (lag <= 0)", Alignment.LowerLeft);
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
        {
            IntegerTicksOnly = true,
            LabelFormatter = x => x.ToString("0", System.Globalization.CultureInfo.InvariantCulture),
        };
        if (lowest <= highest)
            plot.Axes.SetLimitsY(Math.Floor(Math.Log10(lowest)) - 0.05, Math.Ceiling(Math.Log10(highest)) + 0.05);
        double[] allDelays = measured.Select(r => (double)r.CopyDelaySeconds).Distinct().ToArray();
        double span = Math.Max(1, allDelays.Max() - allDelays.Min());
        plot.Axes.SetLimitsX(allDelays.Min() - span * 0.05, allDelays.Max() + span * 0.05);
        plot.Legend.Alignment = Alignment.UpperLeft;
        plot.ShowLegend();
        plot.Add.Annotation(subtitle, Alignment.LowerRight);

        plot.SavePng(basePath + ".png", 900, 560);
        plot.SaveSvg(basePath + ".svg", 900, 560);
        return true;
    }
}
