using Interop;
namespace TcpFreeze.Native;

/// <summary>Linux errno values this library reports, with names and remedies.</summary>
public static class Errnos
{
#pragma warning disable CS1591 // the names are the documentation
    public const int EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, ENXIO = 6, E2BIG = 7, EBADF = 9,
        EAGAIN = 11, ENOMEM = 12, EACCES = 13, EFAULT = 14, EBUSY = 16, EEXIST = 17, ENODEV = 19, ENOTDIR = 20,
        EISDIR = 21, EINVAL = 22, ENFILE = 23, EMFILE = 24, ENOSPC = 28, EROFS = 30, ERANGE = 34, ENAMETOOLONG = 36,
        ENOSYS = 38, ENOTEMPTY = 39, ELOOP = 40, ENODATA = 61, EPROTO = 71, EOVERFLOW = 75, EPROTONOSUPPORT = 93,
        ENOPROTOOPT = 92, EOPNOTSUPP = 95, EAFNOSUPPORT = 97, EADDRNOTAVAIL = 99, ENOTSUPP = 524;
#pragma warning restore CS1591

    private static readonly Dictionary<int, string> Names = new()
    {
        [EPERM] = "EPERM", [ENOENT] = "ENOENT", [ESRCH] = "ESRCH", [EINTR] = "EINTR", [EIO] = "EIO",
        [ENXIO] = "ENXIO", [E2BIG] = "E2BIG", [EBADF] = "EBADF", [EAGAIN] = "EAGAIN", [ENOMEM] = "ENOMEM",
        [EACCES] = "EACCES", [EFAULT] = "EFAULT", [EBUSY] = "EBUSY", [EEXIST] = "EEXIST", [ENODEV] = "ENODEV",
        [ENOTDIR] = "ENOTDIR", [EISDIR] = "EISDIR", [EINVAL] = "EINVAL", [ENFILE] = "ENFILE", [EMFILE] = "EMFILE",
        [ENOSPC] = "ENOSPC", [EROFS] = "EROFS", [ERANGE] = "ERANGE", [ENAMETOOLONG] = "ENAMETOOLONG",
        [ENOSYS] = "ENOSYS", [ENOTEMPTY] = "ENOTEMPTY", [ELOOP] = "ELOOP", [ENODATA] = "ENODATA",
        [EPROTO] = "EPROTO", [EOVERFLOW] = "EOVERFLOW", [ENOPROTOOPT] = "ENOPROTOOPT", [EPROTONOSUPPORT] = "EPROTONOSUPPORT",
        [EOPNOTSUPP] = "EOPNOTSUPP", [EAFNOSUPPORT] = "EAFNOSUPPORT", [EADDRNOTAVAIL] = "EADDRNOTAVAIL", [ENOTSUPP] = "ENOTSUPP",
    };

    /// <summary>The symbolic name of an errno value.</summary>
    public static string Name(int errno) => Names.TryGetValue(errno, out string? name) ? name : $"errno {errno}";

    /// <summary>Why root can still be refused: "run as root" would send it in circles.</summary>
    internal const string RootRefused = "this process is root, yet the kernel refused: it may lack a capability (CAP_BPF, CAP_NET_ADMIN, " +
        "CAP_SYS_ADMIN, or CAP_SYS_PTRACE for another process), act on a process or namespace of a user namespace it does not own, " +
        "or be stopped by a security module (SELinux, AppArmor, lockdown)";

    /// <summary>A remedy for the errno values whose cause is usually the same.</summary>
    public static string? Hint(int errno) => errno switch
    {
        EPERM or EACCES when Libc.geteuid() == 0 => RootRefused,
        EPERM or EACCES => "run as root or grant CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN",
        ENOSYS => "this kernel lacks the feature (the call or the program type is newer than the running kernel)",
        EMFILE or ENFILE => "the process is out of file descriptors; raise RLIMIT_NOFILE",
        _ => null,
    };
}
