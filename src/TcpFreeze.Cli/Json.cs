using System.Text.Json.Serialization;

namespace TcpFreeze.Cli;

/// <summary>
/// The JSON documents of <c>list</c> and <c>stats</c> (<c>--format json</c>, <c>-j</c>, <c>--json</c>). Their schema is
/// documented in docs/cli-json.md and docs/schema/*.schema.json, and <see cref="SchemaVersion"/> is the first field of
/// each: fields may be added under the same version; a field removed, renamed or given another type raises it.
/// Directions are OpenTelemetry's <c>network.io.direction</c> words, <c>receive</c> and <c>transmit</c>, as in the
/// Meter and the Prometheus labels.
/// </summary>
internal static class CliJson
{
    /// <summary>The version of both documents' schema.</summary>
    public const int SchemaVersion = 1;
}

/// <summary>A count per direction: <c>receive</c> (segments arriving at this host) and <c>transmit</c> (leaving it).</summary>
internal sealed record DirectionsJson(ulong Receive, ulong Transmit);

/// <summary>One frozen connection in 'tcpfreeze list --format json'.</summary>
/// <param name="Local">This host's end, ADDRESS:PORT ([ADDRESS]:PORT for IPv6).</param>
/// <param name="Remote">The peer's end.</param>
/// <param name="Dropped">Packets dropped so far, both directions.</param>
/// <param name="LeaseSeconds">Seconds left on the lease; null without a lease; 0 once expired.</param>
/// <param name="Expired">Whether the lease ended (the kernel lets its packets through again).</param>
/// <param name="DataSegmentsDropped">Data segments dropped per direction: receive, the peer's (what the resume kick and the
/// replay wake); transmit, this host's socket's.</param>
internal sealed record FrozenConnectionJson(string Local, string Remote, ulong Dropped, double? LeaseSeconds, bool Expired, DirectionsJson DataSegmentsDropped);

/// <summary>One frozen local endpoint in 'tcpfreeze list --format json'.</summary>
internal sealed record FrozenEndpointJson(string Endpoint, ulong Dropped, double? LeaseSeconds, bool Expired);

/// <summary>The document 'tcpfreeze list --format json' writes.</summary>
internal sealed record FrozenListJson(int SchemaVersion, string PinDirectory, IReadOnlyList<FrozenConnectionJson> Connections, IReadOnlyList<FrozenEndpointJson> Endpoints);

/// <summary>The document 'tcpfreeze stats --format json' writes; counters are summed over CPUs since the programs were loaded.</summary>
internal sealed record StatisticsJson(int SchemaVersion, string PinDirectory, ulong TcpPacketsSeen, DirectionsJson Dropped, ulong Passed,
    int FrozenConnections, int FrozenEndpoints, uint ConnectionCapacity, int ExpiredConnections, int ExpiredEndpoints);

/// <summary>Compile-time JSON serialization (no reflection, so NativeAOT and trimming keep working).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(FrozenListJson))]
[JsonSerializable(typeof(StatisticsJson))]
internal sealed partial class CliJsonContext : JsonSerializerContext;
