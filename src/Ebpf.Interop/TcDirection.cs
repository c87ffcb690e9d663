namespace TcpFreeze.Ebpf.Interop;

/// <summary>Which clsact hook a TC program runs on.</summary>
public enum TcDirection : uint
{
    /// <summary>Packets arriving on the interface.</summary>
    Ingress = 1,
    /// <summary>Packets leaving through the interface.</summary>
    Egress = 2,
}
