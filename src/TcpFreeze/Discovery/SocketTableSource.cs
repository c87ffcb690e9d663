namespace TcpFreeze;

/// <summary>Where discovery reads the namespace's socket table from.</summary>
internal enum SocketTableSource
{
    /// <summary>
    /// The socket iterator when this process has it loaded, or the root process holds more than
    /// <see cref="SocketIterator.WorthLoadingAbove"/> descriptors and it loads; else up to
    /// <see cref="DescriptorSockets.MaximumSockets"/> sockets read from their descriptors when that works, else
    /// sock_diag when the kernel offers it, else the text tables.
    /// </summary>
    Automatic,

    /// <summary>The kernel's sock_diag netlink interface only (fails when it is missing).</summary>
    SockDiag,

    /// <summary>The text tables /proc/PID/net/tcp and tcp6 only.</summary>
    ProcText,

    /// <summary>Each socket read from a descriptor that holds it (<see cref="DescriptorSockets"/>; fails when one cannot be).</summary>
    Descriptors,

    /// <summary>The BPF socket iterator only (<see cref="SocketIterator"/>; fails where the kernel cannot run it).</summary>
    Iterator,
}
