using TcpFreeze.Ebpf.Interop;
using TcpFreeze.Native;

namespace TcpFreeze;

/// <summary>
/// A TcpFreeze operation failed or was refused: the only exception type, besides
/// argument exceptions, that leaves this library. The message says what was attempted
/// and why; nothing the failed call started is left behind. A kernel or libc failure is
/// the <see cref="Exception.InnerException"/> (a <see cref="NativeCallException"/>, or its
/// subtype <see cref="BpfException"/>), and its errno is <see cref="Errno"/>.
/// <see cref="Remedy"/> says which step gets the user out of the state that was found,
/// for front ends (the CLI, the CRIU hook) to word in their own terms.
/// </summary>
/// <remarks>Thread safety: immutable once thrown, like other exceptions.</remarks>
public class TcpFreezeException : Exception
{
    /// <summary>Creates the exception: "OPERATION: REASON".</summary>
    public TcpFreezeException(string operation, string reason, Exception? inner = null, TcpFreezeRemedy remedy = TcpFreezeRemedy.None)
        : base($"{operation}: {reason}", inner)
    {
        Operation = operation;
        Remedy = remedy;
        Errno = (inner as NativeCallException)?.Errno ?? 0;
    }

    /// <summary>Wraps a failed native call, keeping its message (operation, errno, hint) unchanged.</summary>
    public TcpFreezeException(NativeCallException inner)
        : base((inner ?? throw new ArgumentNullException(nameof(inner))).Message, inner)
    {
        Operation = inner.Operation;
        Errno = inner.Errno;
    }

    /// <summary>Wraps a file-system failure on TcpFreeze's own pin directories, keeping its message.</summary>
    private TcpFreezeException(Exception inner, string operation)
        : base(inner.Message, inner)
    {
        Operation = operation;
    }

    /// <summary>What was attempted.</summary>
    public string Operation { get; }

    /// <summary>The positive errno of the native call that failed, or 0 when no native call failed.</summary>
    public int Errno { get; }

    /// <summary>What gets the user out of the state that made the call fail, if anything does.</summary>
    public TcpFreezeRemedy Remedy { get; }

    /// <summary>
    /// Runs <paramref name="work"/>, turning a <see cref="NativeCallException"/>, and a file-system
    /// failure on the pin directories (<see cref="IOException"/>, <see cref="UnauthorizedAccessException"/>),
    /// into a <see cref="TcpFreezeException"/> with the same message.
    /// </summary>
    internal static T Guard<T>(Func<T> work)
    {
        try
        {
            return work();
        }
        catch (NativeCallException e)
        {
            throw new TcpFreezeException(e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TcpFreezeException(e, "use the pin directory");
        }
        catch (Exception e) when (LibbpfMissing(e) is { } missing)
        {
            throw new TcpFreezeException("load libbpf", LibbpfMissingReason(missing), e);
        }
    }

    /// <summary>
    /// The <see cref="DllNotFoundException"/> behind <paramref name="e"/> when libbpf.so.1 could not be
    /// loaded (directly, or through the binding's type initializer, which installs libbpf's log callback).
    /// </summary>
    internal static DllNotFoundException? LibbpfMissing(Exception e) => e switch
    {
        DllNotFoundException d when d.Message.Contains("libbpf", StringComparison.Ordinal) => d,
        TypeInitializationException { InnerException: { } inner } => LibbpfMissing(inner),
        _ => null,
    };

    /// <summary>What to do when libbpf.so.1 is missing.</summary>
    internal static string LibbpfMissingReason(DllNotFoundException e)
        => e.Message.Contains("libbpf.so.1", StringComparison.Ordinal) ? LibbpfMissingText : $"{LibbpfMissingText} ({e.Message.Split('\n')[0]})";

    /// <summary>The sentence that says what is missing and how to get it.</summary>
    internal const string LibbpfMissingText = "libbpf.so.1 cannot be loaded: install libbpf 1.1 or later (on Debian and Ubuntu, the package libbpf1)";

    /// <inheritdoc cref="Guard{T}(Func{T})"/>
    internal static void Guard(Action work) => Guard(() =>
    {
        work();
        return 0;
    });
}
