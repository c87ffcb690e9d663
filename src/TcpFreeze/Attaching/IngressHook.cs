using Microsoft.Extensions.Logging;

namespace TcpFreeze;

/// <summary>Where TcpFreeze's ingress program runs on an interface.</summary>
public enum IngressHook
{
    /// <summary>
    /// The XDP hook (native where the driver has it, else generic): drops before the
    /// kernel allocates an skb. Refuses an interface where another XDP program runs,
    /// unless <see cref="FreezerOptions.ReplaceForeignPrograms"/> is set.
    /// </summary>
    Xdp,

    /// <summary>
    /// A TC clsact ingress filter: puts no XDP program anywhere, so it coexists with
    /// another tool's XDP program and sees the packets that program passes.
    /// </summary>
    Tc,
}
