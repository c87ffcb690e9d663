using System.Runtime.InteropServices;
using Interop;

namespace TcpFreeze.CriuHooks.Interop;

/// <summary>
/// What taking another process's socket out of TCP repair mode needs, over the common interop tree:
/// pidfd_open and pidfd_getfd copy its descriptor (the same open socket), and getsockopt/setsockopt
/// TCP_REPAIR read and clear the mode on the copy (clearing needs CAP_NET_ADMIN over the socket's
/// network namespace).
/// </summary>
internal static unsafe class TcpRepairCalls
{
    private const int AF_INET = 2, AF_INET6 = 10;

    /// <summary>Leaves repair mode and sends a window probe, as CRIU does (a frozen connection drops the probe; the thaw's kick follows).</summary>
    private const int TCP_REPAIR_OFF = 0;

    internal const int ESRCH = 3, EBADF = 9;

    /// <summary>Whether the socket is TCP over IPv4 or IPv6; false for anything else (or when the options cannot be read).</summary>
    internal static bool IsTcp(FileDescriptorHandle socket)
        => Libc.TryGetSocketOption(socket, Libc.SOL_SOCKET, Libc.SO_PROTOCOL, out int protocol) && protocol == Libc.IPPROTO_TCP
           && Libc.TryGetSocketOption(socket, Libc.SOL_SOCKET, Libc.SO_DOMAIN, out int domain) && domain is AF_INET or AF_INET6;

    /// <summary>TCP_REPAIR as the kernel reports it (tcp_getsockopt returns tp->repair): 1 in repair mode, 0 otherwise; -1 with <see cref="LastError"/> on failure.</summary>
    internal static int GetRepair(FileDescriptorHandle socket) => Libc.TryGetSocketOption(socket, Libc.IPPROTO_TCP, Libc.TCP_REPAIR, out int value) ? value : -1;

    /// <summary>Takes the socket out of repair mode; 0, or -1 with <see cref="LastError"/>.</summary>
    internal static int SetRepairOff(FileDescriptorHandle socket)
    {
        int value = TCP_REPAIR_OFF;
        return Libc.setsockopt(socket, Libc.IPPROTO_TCP, Libc.TCP_REPAIR, &value, sizeof(int));
    }

    internal static int LastError => Marshal.GetLastPInvokeError();

    /// <summary>The errno's name and meaning, for messages.</summary>
    internal static string Describe(int errno) => errno switch
    {
        1 => "EPERM (not permitted: the watcher needs CAP_NET_ADMIN and the right to ptrace the task, i.e. root)",
        3 => "ESRCH (the process is gone)",
        9 => "EBADF (the descriptor was closed meanwhile)",
        22 => "EINVAL",
        38 => "ENOSYS (pidfd_getfd needs Linux 5.6 or later)",
        92 => "ENOPROTOOPT",
        _ => $"errno {errno} ({Marshal.GetPInvokeErrorMessage(errno)})",
    };
}
