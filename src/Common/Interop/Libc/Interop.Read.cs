using System.Runtime.InteropServices;

namespace Interop;

internal static unsafe partial class Libc
{
    /// <summary>read(2) on a raw descriptor (a BPF iterator's, which only the caller's safe handle owns).</summary>
    [LibraryImport(Libraries.Libc, EntryPoint = "read", SetLastError = true)]
    internal static partial nint read(int fd, void* buffer, nuint count);
}
