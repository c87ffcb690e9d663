using System.Runtime.InteropServices;

namespace Interop;

internal static partial class Libc
{
    private const long SysPidfdOpen = 434; // the same number on x86-64 and arm64

    [LibraryImport(Libraries.Libc, EntryPoint = "syscall", SetLastError = true)]
    private static partial FileDescriptorHandle pidfd_open(long number, int pid, uint flags);

    /// <summary>A descriptor that becomes readable when process <paramref name="pid"/> exits; invalid if it is gone.</summary>
    internal static FileDescriptorHandle PidfdOpen(int pid) => pidfd_open(SysPidfdOpen, pid, 0);
}
