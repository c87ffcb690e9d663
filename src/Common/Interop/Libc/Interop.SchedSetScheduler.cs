using System.Runtime.InteropServices;

namespace Interop;

internal static partial class Libc
{
    internal const int SCHED_OTHER = 0;

    /// <summary>Runs only when the CPU would otherwise be idle (sched(7)).</summary>
    internal const int SCHED_IDLE = 5;

    /// <summary>sched_setscheduler(2); <paramref name="priority"/> is struct sched_param's only field (0 for SCHED_OTHER and SCHED_IDLE).</summary>
    [LibraryImport(Libraries.Libc, EntryPoint = "sched_setscheduler", SetLastError = true)]
    internal static partial int sched_setscheduler(int pid, int policy, in int priority);
}
