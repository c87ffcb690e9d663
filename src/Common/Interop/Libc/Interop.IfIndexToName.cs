using System.Runtime.InteropServices;

namespace Interop;

internal static unsafe partial class Libc
{
    [LibraryImport(Libraries.Libc, EntryPoint = "if_indextoname", SetLastError = true)]
    internal static partial nint if_indextoname(uint index, byte* name);
}
