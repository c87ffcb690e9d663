using System.Runtime.InteropServices;

namespace Interop;

internal static partial class Libc
{
    [LibraryImport(Libraries.Libc, EntryPoint = "close", SetLastError = true)]
    internal static partial int close(int fd);
}
