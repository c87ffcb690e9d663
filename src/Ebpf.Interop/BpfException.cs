using System.Runtime.InteropServices;

namespace Ebpf.Interop;

/// <summary>
/// A BPF operation failed. The message names the operation, what it acted on, the
/// errno with its symbolic name and meaning, and what the caller can do about it.
/// Test for specific failures with <see cref="Errno"/> (e.g. <see cref="Errnos.ENOENT"/>).
/// </summary>
public class BpfException : Exception
{
    /// <summary>Creates an exception for <paramref name="operation"/> failing with <paramref name="errno"/>.</summary>
    public BpfException(string operation, int errno, string? hint = null, Exception? inner = null)
        : base(Format(operation, errno, hint), inner)
    {
        Operation = operation;
        Errno = errno;
    }

    /// <summary>Creates an exception that is not tied to an errno (errno 0).</summary>
    public BpfException(string message) : base(message)
    {
        Operation = message;
    }

    /// <summary>What was attempted, on what ("attach XDP to veth0").</summary>
    public string Operation { get; }

    /// <summary>The positive errno value, or 0 when the failure did not come from the kernel.</summary>
    public int Errno { get; }

    /// <summary>The symbolic name of <see cref="Errno"/> ("EPERM"), or "errno N" for unnamed values.</summary>
    public string ErrnoName => Errnos.Name(Errno);

    internal static BpfException FromErrno(string operation, int errno, string? hint = null)
        => new(operation, Math.Abs(errno), hint);

    /// <summary>Turns a libbpf int return (negative errno) into an exception.</summary>
    internal static int Check(int result, string operation, string? hint = null)
    {
        if (result < 0)
            throw FromErrno(operation, -result, hint);
        return result;
    }

    private static string Format(string operation, int errno, string? hint)
    {
        string text = $"{operation}: {Errnos.Name(errno)} ({Marshal.GetPInvokeErrorMessage(errno)})";
        hint ??= Errnos.Hint(errno);
        return hint is null ? text : $"{text}; {hint}";
    }
}

/// <summary>Loading a BPF object failed; <see cref="VerifierLog"/> holds what libbpf and the verifier said.</summary>
public sealed class BpfLoadException : BpfException
{
    /// <summary>Creates the exception with the captured libbpf/verifier log.</summary>
    public BpfLoadException(string operation, int errno, string verifierLog)
        : base(operation, errno, string.IsNullOrWhiteSpace(verifierLog) ? null : "the verifier log follows:" + Environment.NewLine + Tail(verifierLog))
    {
        VerifierLog = verifierLog;
    }

    /// <summary>Everything libbpf logged during the load, including the verifier's log on rejection.</summary>
    public string VerifierLog { get; }

    private static string Tail(string log) => log.Length <= 4000 ? log : "..." + log[^4000..];
}

/// <summary>
/// A batch map operation stopped part-way. <see cref="Processed"/> elements, counted
/// from the start of the batch, were applied before the failing one.
/// </summary>
public sealed class BpfBatchException : BpfException
{
    /// <summary>Creates the exception.</summary>
    public BpfBatchException(string operation, int errno, int processed, string? hint = null)
        : base(operation, errno, hint)
    {
        Processed = processed;
    }

    /// <summary>How many elements were applied before the failure (the failing index).</summary>
    public int Processed { get; }
}

/// <summary>Linux errno values this library reports, with names and remedies.</summary>
public static class Errnos
{
#pragma warning disable CS1591 // the names are the documentation
    public const int EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, ENXIO = 6, E2BIG = 7, EBADF = 9,
        EAGAIN = 11, ENOMEM = 12, EACCES = 13, EFAULT = 14, EBUSY = 16, EEXIST = 17, ENODEV = 19, ENOTDIR = 20,
        EISDIR = 21, EINVAL = 22, ENFILE = 23, EMFILE = 24, ENOSPC = 28, EROFS = 30, ERANGE = 34, ENAMETOOLONG = 36,
        ENOSYS = 38, ENOTEMPTY = 39, ELOOP = 40, ENODATA = 61, EPROTO = 71, EOVERFLOW = 75, EPROTONOSUPPORT = 93,
        EOPNOTSUPP = 95, EAFNOSUPPORT = 97, EADDRNOTAVAIL = 99, ENOTSUPP = 524;
#pragma warning restore CS1591

    private static readonly Dictionary<int, string> Names = new()
    {
        [EPERM] = "EPERM", [ENOENT] = "ENOENT", [ESRCH] = "ESRCH", [EINTR] = "EINTR", [EIO] = "EIO",
        [ENXIO] = "ENXIO", [E2BIG] = "E2BIG", [EBADF] = "EBADF", [EAGAIN] = "EAGAIN", [ENOMEM] = "ENOMEM",
        [EACCES] = "EACCES", [EFAULT] = "EFAULT", [EBUSY] = "EBUSY", [EEXIST] = "EEXIST", [ENODEV] = "ENODEV",
        [ENOTDIR] = "ENOTDIR", [EISDIR] = "EISDIR", [EINVAL] = "EINVAL", [ENFILE] = "ENFILE", [EMFILE] = "EMFILE",
        [ENOSPC] = "ENOSPC", [EROFS] = "EROFS", [ERANGE] = "ERANGE", [ENAMETOOLONG] = "ENAMETOOLONG",
        [ENOSYS] = "ENOSYS", [ENOTEMPTY] = "ENOTEMPTY", [ELOOP] = "ELOOP", [ENODATA] = "ENODATA",
        [EPROTO] = "EPROTO", [EOVERFLOW] = "EOVERFLOW", [EPROTONOSUPPORT] = "EPROTONOSUPPORT",
        [EOPNOTSUPP] = "EOPNOTSUPP", [EAFNOSUPPORT] = "EAFNOSUPPORT", [EADDRNOTAVAIL] = "EADDRNOTAVAIL", [ENOTSUPP] = "ENOTSUPP",
    };

    /// <summary>The symbolic name of an errno value.</summary>
    public static string Name(int errno) => Names.TryGetValue(errno, out string? name) ? name : $"errno {errno}";

    /// <summary>A remedy for the errno values whose cause is usually the same.</summary>
    public static string? Hint(int errno) => errno switch
    {
        EPERM or EACCES => "run as root or grant CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN",
        ENOSYS => "this kernel lacks the BPF feature; TcpFreeze needs Linux 5.15 or later",
        EMFILE or ENFILE => "the process is out of file descriptors; raise RLIMIT_NOFILE",
        _ => null,
    };
}
