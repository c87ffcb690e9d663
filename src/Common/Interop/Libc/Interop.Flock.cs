using System.Runtime.InteropServices;

namespace Interop;

internal static partial class Libc
{
    internal const int LOCK_SH = 1, LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;
    internal const int EWOULDBLOCK = 11;

    [LibraryImport(Libraries.Libc, EntryPoint = "flock", SetLastError = true)]
    internal static partial int flock(FileDescriptorHandle fd, int operation);
}
