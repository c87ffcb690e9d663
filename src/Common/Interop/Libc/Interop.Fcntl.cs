using System.Runtime.InteropServices;
using TcpFreeze.Native;

namespace Interop;

internal static partial class Libc
{
    internal const int F_DUPFD_CLOEXEC = 1030;
    internal const int F_SETPIPE_SZ = 1031;

    [LibraryImport(Libraries.Libc, EntryPoint = "fcntl", SetLastError = true)]
    internal static partial int fcntl(int fd, int cmd, int arg);

    /// <summary>Duplicates <paramref name="fd"/> with close-on-exec, so the copy has an owner of its own.</summary>
    internal static int Duplicate(int fd, string operation)
    {
        int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (copy < 0)
            throw NativeCallException.FromLastError(operation);
        return copy;
    }
}
