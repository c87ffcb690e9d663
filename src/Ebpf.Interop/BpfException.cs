using TcpFreeze.Native;

namespace TcpFreeze.Ebpf.Interop;

/// <summary>
/// A libbpf or bpf(2) call failed. Failures of other system calls (flock, setns,
/// netlink, getifaddrs) are plain <see cref="NativeCallException"/>s: catch that base
/// type to handle every errno-carrying failure.
/// </summary>
public class BpfException : NativeCallException
{
    /// <summary>Creates an exception for <paramref name="operation"/> failing with <paramref name="errno"/>.</summary>
    public BpfException(string operation, int errno, string? hint = null, Exception? inner = null)
        : base(operation, errno, hint, inner)
    {
    }

    /// <summary>Creates an exception that is not tied to an errno (errno 0).</summary>
    public BpfException(string message) : base(message)
    {
    }

    internal static BpfException FromErrno(string operation, int errno, string? hint = null)
        => new(operation, Math.Abs(errno), hint);

    /// <summary>Turns a libbpf int return (negative errno) into an exception.</summary>
    internal static int Check(int result, string operation, string? hint = null)
    {
        if (result < 0)
            throw FromErrno(operation, -result, hint);
        return result;
    }

    /// <summary>
    /// Like <see cref="Check(int, string, string?)"/>, but the operation text and the hint
    /// are built only when the call failed (a hint may cost a system call).
    /// </summary>
    internal static int Check<TState>(int result, TState state, Func<TState, int, (string Operation, string? Hint)> describe)
    {
        if (result < 0)
        {
            (string operation, string? hint) = describe(state, -result);
            throw FromErrno(operation, -result, hint);
        }
        return result;
    }
}
