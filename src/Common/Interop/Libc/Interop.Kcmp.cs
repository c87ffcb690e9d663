using System.Runtime.InteropServices;

namespace Interop;

internal static partial class Libc
{
    private const int KCMP_FILES = 2;

    [LibraryImport(Libraries.Libc, EntryPoint = "syscall", SetLastError = true)]
    private static partial long kcmp(long number, int pid1, int pid2, int type, nuint idx1, nuint idx2);

    /// <summary>
    /// Whether two tasks share one file descriptor table (kcmp KCMP_FILES): threads made
    /// with CLONE_FILES do, so their descriptors need reading only once. False when
    /// unsure (unknown architecture, no permission), which only costs a second read.
    /// </summary>
    internal static bool ShareFileTable(int task1, int task2)
    {
        long number = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => 312,
            Architecture.Arm64 => 272,
            _ => -1,
        };
        return number > 0 && kcmp(number, task1, task2, KCMP_FILES, 0, 0) == 0;
    }
}
