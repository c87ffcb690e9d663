namespace TcpFreeze;

/// <summary>When a frozen key starts dropping its packets.</summary>
public enum FreezeTiming
{
    /// <summary>
    /// At once: from the freeze until the thaw (or the lease's end) no segment of the key passes,
    /// in either direction, whatever its socket does. What an operator's <c>tcpfreeze freeze</c> does.
    /// </summary>
    Now,

    /// <summary>
    /// Just in time, the way CRIU's own per-connection lock works: the key's segments pass while
    /// its socket on this host is an ordinary socket, and are dropped only while that socket is in
    /// TCP repair mode (CRIU is dumping or restoring it) or does not exist (dumped and gone, not
    /// restored yet). The kernel programs decide per packet by looking the socket up, so clients
    /// are served until CRIU reaches their socket and again the moment CRIU takes it out of repair
    /// mode, and a socket of another process on the same address and port is never held. For a
    /// frozen endpoint a live listener counts as present: SYNs reach whoever listens there.
    /// </summary>
    JustInTime,
}
