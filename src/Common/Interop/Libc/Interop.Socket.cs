using System.Runtime.InteropServices;

namespace Interop;

internal static partial class Libc
{
    internal const int AF_NETLINK = 16, SOCK_RAW = 3, SOCK_CLOEXEC = 0x80000;
    internal const byte AF_INET = 2, AF_INET6 = 10, IPPROTO_TCP = 6;
    internal const int SOL_SOCKET = 1, SO_NETNS_COOKIE = 71;

    [LibraryImport(Libraries.Libc, EntryPoint = "socket", SetLastError = true)]
    internal static partial FileDescriptorHandle socket(int domain, int type, int protocol);
}
