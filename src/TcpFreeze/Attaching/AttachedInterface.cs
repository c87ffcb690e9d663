namespace TcpFreeze;

/// <summary>An interface TcpFreeze's programs run on.</summary>
/// <param name="Name">Interface name.</param>
/// <param name="Index">Interface index.</param>
/// <param name="XdpMode">Native or generic (meaningless when <see cref="IngressHook"/> is <see cref="TcpFreeze.IngressHook.Tc"/>).</param>
/// <param name="Created">False when it was attached already, in the same hook.</param>
/// <remarks>Thread safety: immutable; safe to share between threads.</remarks>
public sealed record AttachedInterface(string Name, int Index, XdpAttachMode XdpMode, bool Created)
{
    /// <summary>Where the ingress program runs on this interface.</summary>
    public IngressHook IngressHook { get; init; } = IngressHook.Xdp;

    /// <summary>
    /// Whether it is a point-to-point (L3) device (<see cref="NetworkInterfaceInfo.IsLayer3"/>): it runs
    /// TcpFreeze's L3 programs as TC filters on both hooks (<see cref="IngressHook"/> is then
    /// <see cref="TcpFreeze.IngressHook.Tc"/>, whichever hook the options ask for).
    /// </summary>
    public bool Layer3 { get; init; }
}
