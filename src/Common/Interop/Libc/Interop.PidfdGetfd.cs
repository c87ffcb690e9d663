using System.Runtime.InteropServices;

namespace Interop;

internal static partial class Libc
{
    private const long SysPidfdGetfd = 438; // the same number on x86-64 and arm64

    [LibraryImport(Libraries.Libc, EntryPoint = "syscall", SetLastError = true)]
    private static partial FileDescriptorHandle pidfd_getfd(long number, FileDescriptorHandle pidfd, int targetFd, uint flags);

    /// <summary>
    /// A copy, in this process, of descriptor <paramref name="targetFd"/> of the process behind
    /// <paramref name="pidfd"/> (Linux 5.6+; needs PTRACE_MODE_ATTACH_REALCREDS over it, which root has):
    /// the same open file. Invalid, with the errno in GetLastPInvokeError, when it failed.
    /// </summary>
    internal static FileDescriptorHandle PidfdGetfd(FileDescriptorHandle pidfd, int targetFd) => pidfd_getfd(SysPidfdGetfd, pidfd, targetFd, 0);
}
