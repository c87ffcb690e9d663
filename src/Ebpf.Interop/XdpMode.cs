namespace TcpFreeze.Ebpf.Interop;

/// <summary>How an XDP program is attached.</summary>
public enum XdpMode
{
    /// <summary>Native (driver) mode when the driver supports it, generic (skb) mode otherwise.</summary>
    Auto,
    /// <summary>Driver mode only (XDP_FLAGS_DRV_MODE).</summary>
    Native,
    /// <summary>Generic mode (XDP_FLAGS_SKB_MODE): works on every interface, loopback included.</summary>
    Generic,
}
