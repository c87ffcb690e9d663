using System.Runtime.InteropServices;
using System.Text;

namespace TcpFreeze.Ebpf.Interop;

/// <summary>BPF program types this library loads or inspects (values of enum bpf_prog_type).</summary>
public enum BpfProgramType : uint
{
    /// <summary>BPF_PROG_TYPE_UNSPEC.</summary>
    Unspecified = 0,
    /// <summary>BPF_PROG_TYPE_SOCKET_FILTER.</summary>
    SocketFilter = 1,
    /// <summary>BPF_PROG_TYPE_SCHED_CLS (TC classifier).</summary>
    SchedCls = 3,
    /// <summary>BPF_PROG_TYPE_XDP.</summary>
    Xdp = 6,
}
