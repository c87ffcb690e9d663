using System.Runtime.InteropServices;

namespace Interop;

internal static unsafe partial class Libc
{
    internal const int CLOCK_MONOTONIC = 1;

    [LibraryImport(Libraries.Libc, EntryPoint = "clock_gettime", SetLastError = true)]
    internal static partial int clock_gettime(int clock, TimeSpec* time);

    [StructLayout(LayoutKind.Sequential)]
    internal struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    /// <summary>CLOCK_MONOTONIC in nanoseconds: the clock bpf_ktime_get_ns() reads.</summary>
    internal static ulong MonotonicNanoseconds()
    {
        TimeSpec time;
        if (clock_gettime(CLOCK_MONOTONIC, &time) != 0)
            throw new InvalidOperationException($"clock_gettime(CLOCK_MONOTONIC) failed: errno {Marshal.GetLastPInvokeError()}");
        return (ulong)time.Seconds * 1_000_000_000UL + (ulong)time.Nanoseconds;
    }
}
