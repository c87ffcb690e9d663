using System.Runtime.InteropServices;

namespace Interop;

internal static partial class Libc
{
    [LibraryImport(Libraries.Libc, EntryPoint = "getppid")]
    internal static partial int getppid();
}
