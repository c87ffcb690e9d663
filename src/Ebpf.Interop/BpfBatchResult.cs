namespace TcpFreeze.Ebpf.Interop;

/// <summary>
/// How far a batch map operation got: <see cref="Processed"/> elements, counted from the
/// start of the batch, were applied; when <see cref="Errno"/> is not 0 the element at
/// index <see cref="Processed"/> is the one that stopped it.
/// </summary>
/// <param name="Processed">Elements applied.</param>
/// <param name="Errno">0 when the whole batch was applied, else the positive errno of the element that stopped it.</param>
public readonly record struct BpfBatchResult(int Processed, int Errno)
{
    /// <summary>Whether every element was applied.</summary>
    public bool Completed => Errno == 0;
}
