using System.Runtime.InteropServices;

namespace Interop;

internal static unsafe partial class Libc
{
    /// <summary>Formats libbpf's log lines (a printf format and its va_list).</summary>
    [LibraryImport(Libraries.Libc, EntryPoint = "vsnprintf")]
    internal static partial int vsnprintf(byte* buffer, nuint size, nint format, nint args);
}
