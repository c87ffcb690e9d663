using System.Runtime.InteropServices;

namespace Interop;

internal static partial class Libc
{
    [LibraryImport(Libraries.Libc, EntryPoint = "setsid")]
    internal static partial int setsid();
}
