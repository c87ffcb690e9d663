using System.Text.Json.Serialization;

namespace TcpFreeze.Cli;

/// <summary>One frozen connection in 'tcpfreeze list --json'.</summary>
/// <param name="Local">This host's end, ADDRESS:PORT ([ADDRESS]:PORT for IPv6).</param>
/// <param name="Remote">The peer's end.</param>
/// <param name="Dropped">Packets dropped so far, both directions.</param>
/// <param name="LeaseSeconds">Seconds left on the lease; null without a lease; 0 once expired.</param>
/// <param name="Expired">Whether the lease ended (the kernel lets its packets through again).</param>
/// <param name="PeerDataDropped">Data segments from the peer that were dropped (what the resume kick wakes on the peer's side).</param>
/// <param name="LocalDataDropped">Data segments from this host's socket that were dropped.</param>
internal sealed record FrozenConnectionJson(string Local, string Remote, ulong Dropped, double? LeaseSeconds, bool Expired, uint PeerDataDropped, uint LocalDataDropped);

/// <summary>One frozen local endpoint in 'tcpfreeze list --json'.</summary>
internal sealed record FrozenEndpointJson(string Endpoint, ulong Dropped, double? LeaseSeconds, bool Expired);

/// <summary>The document 'tcpfreeze list --json' writes.</summary>
internal sealed record FrozenListJson(string PinDirectory, IReadOnlyList<FrozenConnectionJson> Connections, IReadOnlyList<FrozenEndpointJson> Endpoints);

/// <summary>The document 'tcpfreeze stats --json' writes; counters are summed over CPUs since the programs were loaded.</summary>
internal sealed record StatisticsJson(string PinDirectory, ulong TcpPacketsSeen, ulong DroppedIngress, ulong DroppedEgress, ulong Passed,
    int FrozenConnections, int FrozenEndpoints, uint ConnectionCapacity, int ExpiredConnections, int ExpiredEndpoints);

/// <summary>Compile-time JSON serialization (no reflection, so NativeAOT and trimming keep working).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(FrozenListJson))]
[JsonSerializable(typeof(StatisticsJson))]
internal sealed partial class CliJsonContext : JsonSerializerContext;
