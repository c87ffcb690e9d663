namespace TcpFreeze;

/// <summary>
/// A TcpFreeze operation failed or was refused. The message says what was attempted
/// and what to do; nothing the failed call started is left behind. Kernel failures
/// arrive as the inner <see cref="Ebpf.Interop.BpfException"/> (or are thrown as one).
/// </summary>
public class TcpFreezeException : Exception
{
    /// <summary>Creates the exception: "OPERATION: REASON".</summary>
    public TcpFreezeException(string operation, string reason, Exception? inner = null)
        : base($"{operation}: {reason}", inner)
    {
        Operation = operation;
    }

    /// <summary>What was attempted.</summary>
    public string Operation { get; }
}
