using System.Runtime.InteropServices;

namespace Interop;

internal static unsafe partial class Libc
{
    [LibraryImport(Libraries.Libc, EntryPoint = "sendto", SetLastError = true)]
    internal static partial nint sendto(FileDescriptorHandle socket, void* buffer, nuint length, int flags, SockAddrNl* address, uint addressLength);
}
