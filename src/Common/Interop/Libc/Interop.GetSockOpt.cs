using System.Runtime.InteropServices;

namespace Interop;

internal static unsafe partial class Libc
{
    // SOL_SOCKET, IPPROTO_TCP and the address families are in Interop.Socket.cs.
    internal const int SO_PROTOCOL = 38, SO_DOMAIN = 39;
    internal const int TCP_REPAIR = 19, TCP_INFO = 11;

    [LibraryImport(Libraries.Libc, EntryPoint = "getsockopt", SetLastError = true)]
    internal static partial int getsockopt(FileDescriptorHandle socket, int level, int name, void* value, uint* length);

    /// <summary>An int socket option; false (errno in GetLastPInvokeError) when it cannot be read.</summary>
    internal static bool TryGetSocketOption(FileDescriptorHandle socket, int level, int name, out int value)
    {
        int result = 0;
        uint length = sizeof(int);
        bool ok = getsockopt(socket, level, name, &result, &length) == 0;
        value = result;
        return ok;
    }
}
