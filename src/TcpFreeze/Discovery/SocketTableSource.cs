namespace TcpFreeze;

/// <summary>Where discovery reads the namespace's socket table from.</summary>
internal enum SocketTableSource
{
    /// <summary>sock_diag when the kernel offers it, else the text tables.</summary>
    Automatic,

    /// <summary>The kernel's sock_diag netlink interface only (fails when it is missing).</summary>
    SockDiag,

    /// <summary>The text tables /proc/PID/net/tcp and tcp6 only.</summary>
    ProcText,
}
