using TcpFreeze.Ebpf.Interop;

namespace TcpFreeze;

/// <summary>How TcpFreeze's XDP program is attached (TcpFreeze's own copy of the interop layer's mode, so that layer stays out of this API).</summary>
public enum XdpAttachMode
{
    /// <summary>Native (driver) mode when the driver supports it, generic (skb) mode otherwise.</summary>
    Auto,
    /// <summary>Driver mode only.</summary>
    Native,
    /// <summary>Generic (skb) mode: works on every interface, loopback included.</summary>
    Generic,
}

/// <summary>Conversions between <see cref="XdpAttachMode"/> and the interop layer's <see cref="XdpMode"/>.</summary>
internal static class XdpAttachModes
{
    public static XdpMode ToInterop(this XdpAttachMode mode) => mode switch
    {
        XdpAttachMode.Native => XdpMode.Native,
        XdpAttachMode.Generic => XdpMode.Generic,
        _ => XdpMode.Auto,
    };

    public static XdpAttachMode FromInterop(XdpMode mode) => mode switch
    {
        XdpMode.Native => XdpAttachMode.Native,
        XdpMode.Generic => XdpAttachMode.Generic,
        _ => XdpAttachMode.Auto,
    };
}
