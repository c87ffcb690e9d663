using System.Runtime.InteropServices;

namespace Interop;

internal static unsafe partial class Libc
{
    [LibraryImport(Libraries.Libc, EntryPoint = "freeifaddrs")]
    internal static partial void freeifaddrs(IfAddrs* addresses);
}
