using System.Runtime.InteropServices;

namespace Interop;

internal static partial class Libc
{
    [LibraryImport(Libraries.Libc, EntryPoint = "dup2", SetLastError = true)]
    internal static partial int dup2(SafeHandle from, int to);
}
