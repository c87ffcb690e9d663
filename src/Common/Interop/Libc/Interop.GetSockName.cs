using System.Net;
using System.Runtime.InteropServices;

namespace Interop;

internal static unsafe partial class Libc
{
    [LibraryImport(Libraries.Libc, EntryPoint = "getsockname", SetLastError = true)]
    private static partial int getsockname(FileDescriptorHandle socket, byte* address, uint* length);

    [LibraryImport(Libraries.Libc, EntryPoint = "getpeername", SetLastError = true)]
    private static partial int getpeername(FileDescriptorHandle socket, byte* address, uint* length);

    /// <summary>
    /// The local (or, with <paramref name="peer"/>, the remote) address of an IPv4 or IPv6 socket, without an IPv6
    /// scope id (as sock_diag reports it); null when there is none (errno in GetLastPInvokeError) or the family is another.
    /// </summary>
    internal static IPEndPoint? GetSocketEndPoint(FileDescriptorHandle socket, bool peer)
    {
        // struct sockaddr_in6 (28 bytes) is the larger of the two: family u16, port u16 (network order), then
        // sockaddr_in: the address at 4; sockaddr_in6: flowinfo at 4, the address at 8.
        byte* buffer = stackalloc byte[28];
        uint length = 28;
        if ((peer ? getpeername(socket, buffer, &length) : getsockname(socket, buffer, &length)) != 0)
            return null;
        ushort family = *(ushort*)buffer;
        int port = buffer[2] << 8 | buffer[3];
        return family switch
        {
            AF_INET when length >= 8 => new IPEndPoint(new IPAddress(new ReadOnlySpan<byte>(buffer + 4, 4)), port),
            AF_INET6 when length >= 28 => new IPEndPoint(new IPAddress(new ReadOnlySpan<byte>(buffer + 8, 16)), port),
            _ => null,
        };
    }
}
