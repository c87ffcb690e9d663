using System.Runtime.InteropServices;

namespace Interop;

internal static unsafe partial class Libc
{
    /// <summary>readlinkat(2) with the name as bytes, so the descriptor scan builds no string per descriptor.</summary>
    [LibraryImport(Libraries.Libc, EntryPoint = "readlinkat", SetLastError = true)]
    internal static partial nint readlinkat(FileDescriptorHandle directory, byte* name, byte* buffer, nuint length);
}
