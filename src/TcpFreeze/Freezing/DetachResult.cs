namespace TcpFreeze;

/// <summary>What <see cref="TcpFreezer.Detach(FreezerOptions?)"/> removed.</summary>
/// <param name="Interfaces">Interfaces whose TcpFreeze programs were detached.</param>
/// <param name="PinsRemoved">Pins removed.</param>
public sealed record DetachResult(IReadOnlyList<string> Interfaces, int PinsRemoved);
