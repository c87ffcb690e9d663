using System.Runtime.InteropServices;

namespace TcpFreeze.CriuHooks.Interop;

/// <summary>
/// The native calls that take another process's socket out of TCP repair mode: pidfd_open and
/// pidfd_getfd (Linux 5.6+; the caller needs PTRACE_MODE_ATTACH_REALCREDS over the target, which
/// root has) copy its descriptor, and getsockopt/setsockopt TCP_REPAIR read and clear the mode on
/// the copy, which is the same open socket (clearing needs CAP_NET_ADMIN over the socket's network
/// namespace). Self-contained on purpose: nothing else in the hook depends on these.
/// </summary>
internal static unsafe partial class TcpRepairCalls
{
    private const string Library = "libc";
    private const long SysPidfdOpen = 434, SysPidfdGetfd = 438; // the same numbers on x86-64 and arm64

    private const int SOL_SOCKET = 1, SO_PROTOCOL = 38, SO_DOMAIN = 39;
    private const int IPPROTO_TCP = 6, TCP_REPAIR = 19;
    private const int AF_INET = 2, AF_INET6 = 10;

    /// <summary>Leaves repair mode and sends a window probe, as CRIU does (a frozen connection drops the probe; the thaw's kick follows).</summary>
    private const int TCP_REPAIR_OFF = 0;

    internal const int ESRCH = 3, EBADF = 9;

    [LibraryImport(Library, EntryPoint = "syscall", SetLastError = true)]
    private static partial long syscall(long number, long first, long second, long third);

    [LibraryImport(Library, EntryPoint = "getsockopt", SetLastError = true)]
    private static partial int getsockopt(int fd, int level, int name, int* value, uint* length);

    [LibraryImport(Library, EntryPoint = "setsockopt", SetLastError = true)]
    private static partial int setsockopt(int fd, int level, int name, int* value, uint length);

    [LibraryImport(Library, EntryPoint = "close")]
    internal static partial int close(int fd);

    /// <summary>A process descriptor for <paramref name="pid"/>; invalid (see <see cref="LastError"/>) when it is gone.</summary>
    internal static OwnedDescriptor PidfdOpen(int pid) => new((int)syscall(SysPidfdOpen, pid, 0, 0));

    /// <summary>A copy, in this process, of descriptor <paramref name="fd"/> of the process behind <paramref name="pidfd"/>.</summary>
    internal static OwnedDescriptor PidfdGetfd(OwnedDescriptor pidfd, int fd) => new((int)syscall(SysPidfdGetfd, pidfd.Number, fd, 0));

    /// <summary>Whether the socket is TCP over IPv4 or IPv6; false for anything else (or when the options cannot be read).</summary>
    internal static bool IsTcp(OwnedDescriptor socket)
        => TryGetInt(socket, SOL_SOCKET, SO_PROTOCOL, out int protocol) && protocol == IPPROTO_TCP
           && TryGetInt(socket, SOL_SOCKET, SO_DOMAIN, out int domain) && domain is AF_INET or AF_INET6;

    /// <summary>TCP_REPAIR as the kernel reports it (tcp_getsockopt returns tp->repair): 1 in repair mode, 0 otherwise; -1 with <see cref="LastError"/> on failure.</summary>
    internal static int GetRepair(OwnedDescriptor socket) => TryGetInt(socket, IPPROTO_TCP, TCP_REPAIR, out int value) ? value : -1;

    /// <summary>Takes the socket out of repair mode; 0, or -1 with <see cref="LastError"/>.</summary>
    internal static int SetRepairOff(OwnedDescriptor socket)
    {
        int value = TCP_REPAIR_OFF;
        return setsockopt(socket.Number, IPPROTO_TCP, TCP_REPAIR, &value, sizeof(int));
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

    private static bool TryGetInt(OwnedDescriptor socket, int level, int name, out int value)
    {
        int result = 0;
        uint length = sizeof(int);
        bool ok = getsockopt(socket.Number, level, name, &result, &length) == 0;
        value = result;
        return ok;
    }
}

/// <summary>A descriptor this process owns (a pidfd or a copied socket), closed on dispose; invalid when the call that made it failed.</summary>
internal sealed class OwnedDescriptor : SafeHandle
{
    public OwnedDescriptor(int fd) : base(-1, ownsHandle: true) => SetHandle(fd);

    public override bool IsInvalid => (int)handle < 0;

    /// <summary>The descriptor number, or -1 when invalid; valid while this handle is not disposed.</summary>
    public int Number => IsInvalid || IsClosed ? -1 : (int)handle;

    protected override bool ReleaseHandle() => TcpRepairCalls.close((int)handle) == 0;
}
