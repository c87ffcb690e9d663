using System.Runtime.InteropServices;

namespace Interop;

internal static partial class Libc
{
    [LibraryImport(Libraries.Libc, EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int mount(string source, string target, string fstype, nuint flags, nint data);
}
