namespace TcpFreeze.Ebpf.Interop;

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
