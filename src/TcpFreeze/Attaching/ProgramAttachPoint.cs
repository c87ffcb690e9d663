namespace TcpFreeze;

/// <summary>Where a TcpFreeze program runs.</summary>
public enum ProgramAttachPoint
{
    /// <summary>XDP, on ingress.</summary>
    XdpIngress,
    /// <summary>TC clsact, on egress.</summary>
    TcEgress,
    /// <summary>TC clsact, on ingress (<see cref="IngressHook.Tc"/>).</summary>
    TcIngress,
}
