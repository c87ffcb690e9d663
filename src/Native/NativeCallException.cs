using System.Runtime.InteropServices;

namespace TcpFreeze.Native;

/// <summary>
/// A native call failed with an errno. The message names the operation, what it acted
/// on, the errno with its symbolic name and meaning, and what the caller can do about
/// it. Test for specific failures with <see cref="Errno"/> (e.g. <see cref="Errnos.ENOENT"/>).
/// The BPF binding's <c>BpfException</c> is the subtype for libbpf and bpf(2) calls.
/// </summary>
public class NativeCallException : Exception
{
    /// <summary>Creates an exception for <paramref name="operation"/> failing with <paramref name="errno"/>.</summary>
    public NativeCallException(string operation, int errno, string? hint = null, Exception? inner = null)
        : base(Format(operation, errno, hint), inner)
    {
        Operation = operation;
        Errno = errno;
    }

    /// <summary>Creates an exception that is not tied to an errno (errno 0).</summary>
    public NativeCallException(string message) : base(message)
    {
        Operation = message;
    }

    /// <summary>What was attempted, on what ("attach XDP to veth0").</summary>
    public string Operation { get; }

    /// <summary>The positive errno value, or 0 when the failure did not come from the kernel.</summary>
    public int Errno { get; }

    /// <summary>The symbolic name of <see cref="Errno"/> ("EPERM"), or "errno N" for unnamed values.</summary>
    public string ErrnoName => Errnos.Name(Errno);

    /// <summary>The exception for a libc call that failed with errno set (SetLastError = true).</summary>
    public static NativeCallException FromLastError(string operation, string? hint = null)
        => new(operation, Marshal.GetLastPInvokeError(), hint);

    private static string Format(string operation, int errno, string? hint)
    {
        // ENOTSUPP (524) is the kernel's own, unknown to libc ("Unknown error 524").
        string meaning = errno == Errnos.ENOTSUPP ? "Operation is not supported" : Marshal.GetPInvokeErrorMessage(errno);
        string text = $"{operation}: {Errnos.Name(errno)} ({meaning})";
        hint ??= Errnos.Hint(errno);
        return hint is null ? text : $"{text}; {hint}";
    }
}
