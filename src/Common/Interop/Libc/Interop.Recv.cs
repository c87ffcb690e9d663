using System.Runtime.InteropServices;

namespace Interop;

internal static unsafe partial class Libc
{
    internal const int MSG_TRUNC = 0x20;

    [LibraryImport(Libraries.Libc, EntryPoint = "recv", SetLastError = true)]
    internal static partial nint recv(FileDescriptorHandle socket, void* buffer, nuint length, int flags);
}
