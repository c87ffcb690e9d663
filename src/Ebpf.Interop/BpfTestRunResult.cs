using System.Runtime.InteropServices;
using System.Text;

namespace TcpFreeze.Ebpf.Interop;

/// <summary>The outcome of <see cref="BpfProgram.TestRun"/>.</summary>
/// <param name="ReturnValue">The program's verdict (e.g. XDP_DROP = 1, XDP_PASS = 2; TC_ACT_OK = 0, TC_ACT_SHOT = 2).</param>
/// <param name="MeanDuration">The kernel's mean time per repetition.</param>
/// <param name="MeanNanoseconds">The same, in nanoseconds as the kernel reported it.</param>
/// <param name="Output">The packet after the program ran.</param>
public sealed record BpfTestRunResult(uint ReturnValue, TimeSpan MeanDuration, int MeanNanoseconds, byte[] Output);
