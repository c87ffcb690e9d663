using System.Text.Json;
using System.Text.RegularExpressions;
using TcpFreeze.Cli;

namespace TcpFreeze.Tests;

/// <summary>
/// One vocabulary for directions (docs/cli-json.md): receive and transmit, the Meter's network.io.direction values
/// (TelemetryTests checks the Meter against real drops), in the Prometheus labels and the JSON, each mapped to the
/// counter of the program that drops in that direction.
/// </summary>
public sealed class DirectionVocabularyTests
{
    private static readonly FreezerStatistics Counted = new(TcpPacketsSeen: 100, DroppedIngress: 7, DroppedEgress: 3, Passed: 90,
        FrozenConnections: 1, FrozenEndpoints: 0, ConnectionCapacity: 8);

    [Fact]
    public void Prometheus_labels_say_receive_for_the_ingress_drops_and_transmit_for_the_egress_drops()
    {
        string text = PrometheusText.Format("/sys/fs/bpf/tcpfreeze/netns-1", Counted);
        var samples = Regex.Matches(text, @"^tcpfreeze_packets_dropped_total\{[^}]*direction=""([a-z]+)""\} (\d+)$", RegexOptions.Multiline)
            .ToDictionary(m => m.Groups[1].Value, m => ulong.Parse(m.Groups[2].Value));
        Assert.Equal(new Dictionary<string, ulong> { ["receive"] = 7, ["transmit"] = 3 }, samples);
        Assert.DoesNotContain("ingress", text);
        Assert.DoesNotContain("egress", text);
    }

    [Fact]
    public void Json_counts_per_direction_under_the_same_two_words()
    {
        string json = JsonSerializer.Serialize(new StatisticsJson(CliJson.SchemaVersion, "/p", 100, new DirectionsJson(Counted.DroppedIngress, Counted.DroppedEgress), 90, 1, 0, 8, 0, 0),
            CliJsonContext.Default.StatisticsJson);
        JsonElement dropped = JsonDocument.Parse(json).RootElement.GetProperty("dropped");
        Assert.Equal(["receive", "transmit"], dropped.EnumerateObject().Select(p => p.Name));
        Assert.Equal(7UL, dropped.GetProperty("receive").GetUInt64());
        Assert.Equal(3UL, dropped.GetProperty("transmit").GetUInt64());
    }
}
