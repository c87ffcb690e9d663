namespace TcpFreeze;

/// <summary>What <see cref="TcpFreezer.Freeze"/> did.</summary>
/// <param name="ConnectionsFrozen">Connections newly frozen.</param>
/// <param name="EndpointsFrozen">Endpoints newly frozen.</param>
/// <param name="AlreadyFrozen">Keys that were frozen before (an entry whose lease had ended does not count); their lease was replaced by this call's.</param>
public sealed record FreezeResult(int ConnectionsFrozen, int EndpointsFrozen, int AlreadyFrozen);
