using System.Globalization;
using System.Text;

namespace TcpFreeze.Cli;

/// <summary>
/// <c>tcpfreeze stats --format prometheus</c>: the statistics of one namespace in the Prometheus
/// text exposition format (version 0.0.4), for node_exporter's textfile collector. Every sample
/// carries the pin directory as the label <c>pin_directory</c>, so files for several namespaces
/// can sit side by side. The packet counters count since the kernel programs were loaded (a
/// detach and attach starts them again at 0, which Prometheus' rate() takes as a counter reset). The
/// <c>direction</c> label takes the Meter's <c>network.io.direction</c> values, <c>receive</c> and <c>transmit</c>.
/// </summary>
internal static class PrometheusText
{
    /// <summary>The exposition of <paramref name="s"/>, or of "not attached" when <paramref name="s"/> is null.</summary>
    public static string Format(string pinDirectory, FreezerStatistics? s)
    {
        var text = new StringBuilder();
        string label = $"pin_directory=\"{Escape(pinDirectory)}\"";
        Metric(text, "tcpfreeze_attached", "gauge", "1 when TcpFreeze's maps are pinned for the namespace, 0 when nothing is attached.",
            [(label, s is null ? 0UL : 1UL)]);
        if (s is null)
            return text.ToString();
        Metric(text, "tcpfreeze_tcp_packets_seen_total", "counter", "TCP packets the kernel programs parsed since they were loaded.",
            [(label, s.TcpPacketsSeen)]);
        Metric(text, "tcpfreeze_packets_dropped_total", "counter", "Packets of frozen connections and endpoints the kernel programs dropped since they were loaded, by direction (receive, transmit).",
            [($"{label},direction=\"receive\"", s.DroppedIngress), ($"{label},direction=\"transmit\"", s.DroppedEgress)]);
        Metric(text, "tcpfreeze_packets_passed_total", "counter", "Packets the kernel programs let through since they were loaded (TCP or not).",
            [(label, s.Passed)]);
        Metric(text, "tcpfreeze_frozen_connections", "gauge", "Connections frozen now (entries whose lease ended are not counted).",
            [(label, (ulong)s.FrozenConnections)]);
        Metric(text, "tcpfreeze_frozen_endpoints", "gauge", "Local endpoints frozen now (entries whose lease ended are not counted).",
            [(label, (ulong)s.FrozenEndpoints)]);
        Metric(text, "tcpfreeze_expired_entries", "gauge", "Entries whose lease ended: they drop nothing, and the next freeze removes them.",
            [($"{label},kind=\"connection\"", (ulong)s.ExpiredConnections), ($"{label},kind=\"endpoint\"", (ulong)s.ExpiredEndpoints)]);
        Metric(text, "tcpfreeze_connection_capacity", "gauge", "How many connections the namespace's map can hold.",
            [(label, s.ConnectionCapacity)]);
        return text.ToString();
    }

    private static void Metric(StringBuilder text, string name, string type, string help, (string Labels, ulong Value)[] samples)
    {
        text.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
        text.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
        foreach ((string labels, ulong value) in samples)
            text.Append(name).Append('{').Append(labels).Append("} ").Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');
    }

    /// <summary>A label value: backslash, double quote and new line are escaped.</summary>
    internal static string Escape(string value)
        => value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
}
