using System.Runtime.InteropServices;
using System.Text;

namespace TcpFreeze.Ebpf.Interop;

/// <summary>A program's kernel identity.</summary>
/// <param name="Id">The kernel-wide program id (what `bpftool prog` and XDP/TC queries report).</param>
/// <param name="Type">The program type.</param>
/// <param name="Name">The name, truncated by the kernel to 15 bytes.</param>
public sealed record BpfProgramInfo(uint Id, BpfProgramType Type, string Name);
