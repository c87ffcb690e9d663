using System.Runtime.ExceptionServices;
using TcpFreeze.Ebpf.Interop;
using TcpFreeze.Native;

namespace TcpFreeze;

/// <summary>
/// The TCP socket table of a network namespace, from one of two readers: the kernel's
/// sock_diag netlink dump (fast, filtered by inode) or the text tables /proc/PID/net/tcp
/// and tcp6 (always there, and the only one a fake /proc can describe).
/// </summary>
internal static class SocketTable
{
    /// <summary>Every TCP socket of the calling thread's namespace: sock_diag when the kernel offers it, else the text tables.</summary>
    public static List<ProcNetTcpEntry> ReadOwn(string operation)
    {
        try
        {
            return SockDiag.TryDumpTcp(null) ?? [.. ReadText("/proc", null, "tcp", operation), .. ReadText("/proc", null, "tcp6", operation)];
        }
        catch (NativeCallException e)
        {
            throw new TcpFreezeException(operation, e.Message, e);
        }
        catch (FormatException e)
        {
            throw new TcpFreezeException(operation, $"the kernel's sock_diag reply cannot be read: {e.Message}", e);
        }
    }

    /// <summary>
    /// The TCP sockets of <paramref name="pid"/>'s network namespace, IPv4 first; from
    /// sock_diag only those in <paramref name="inodes"/> (the caller filters the text tables).
    /// </summary>
    public static List<ProcNetTcpEntry> Read(string procRoot, int pid, SocketTableSource source, HashSet<ulong> inodes, string operation)
    {
        if (source != SocketTableSource.ProcText)
        {
            List<ProcNetTcpEntry>? dumped = TryDumpWithSockDiag(pid, inodes, operation);
            if (dumped is not null)
                return dumped;
            if (source == SocketTableSource.SockDiag)
                throw new TcpFreezeException(operation,
                    $"sock_diag cannot be used for the network namespace of process {pid} (no NETLINK_SOCK_DIAG or inet_diag in this kernel, or the namespace cannot be entered)");
        }
        List<ProcNetTcpEntry> entries = ReadText(procRoot, pid, "tcp", operation);
        entries.AddRange(ReadText(procRoot, pid, "tcp6", operation));
        return entries;
    }

    /// <summary>
    /// Dumps the sockets through sock_diag, which reports the calling thread's network
    /// namespace: in place when that is <paramref name="pid"/>'s, else on a thread that
    /// enters it. Null when sock_diag cannot be used here (the kernel lacks it, the
    /// namespace cannot be told or entered without privileges, or the process exited);
    /// the text tables then give the answer or the error the caller would always have got.
    /// </summary>
    private static List<ProcNetTcpEntry>? TryDumpWithSockDiag(int pid, HashSet<ulong> inodes, string operation)
    {
        bool? same = NetworkNamespace.IsProcessInCallersNamespace(pid);
        if (same is null)
            return null;
        if (same == true)
            return DumpOrThrow(inodes, pid, operation);

        ExceptionDispatchInfo? failure = null;
        List<ProcNetTcpEntry>? dumped;
        try
        {
            dumped = NetworkNamespace.FromProcess(pid).Run(() =>
            {
                try
                {
                    return DumpOrThrow(inodes, pid, operation);
                }
                catch (TcpFreezeException e)
                {
                    failure = ExceptionDispatchInfo.Capture(e);
                    return null;
                }
            });
        }
        catch (Exception e) when (e is NativeCallException or TcpFreezeException)
        {
            return null; // entering the namespace needs CAP_SYS_ADMIN (or the process exited); reading /proc/PID/net needs neither
        }
        failure?.Throw();
        return dumped;
    }

    private static List<ProcNetTcpEntry>? DumpOrThrow(HashSet<ulong> inodes, int pid, string operation)
    {
        try
        {
            return SockDiag.TryDumpTcp(inodes);
        }
        catch (NativeCallException e)
        {
            throw new TcpFreezeException(operation, $"{e.Message} (in the network namespace of process {pid})", e);
        }
        catch (FormatException e)
        {
            throw new TcpFreezeException(operation, $"the kernel's sock_diag reply cannot be read: {e.Message}", e);
        }
    }

    /// <summary>
    /// Reads one text table: /proc/PID/net/TABLE for <paramref name="pid"/>'s namespace, or,
    /// with no <paramref name="pid"/>, /proc/thread-self/net/TABLE for the calling thread's.
    /// </summary>
    private static List<ProcNetTcpEntry> ReadText(string procRoot, int? pid, string table, string operation)
    {
        string path = pid is { } p ? Path.Combine(ProcessTree.PathOf(procRoot, p), "net", table) : $"/proc/thread-self/net/{table}";
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (FileNotFoundException) when (table == "tcp6")
        {
            return []; // IPv6 is disabled in this kernel
        }
        catch (Exception e) when (pid is not null && e is DirectoryNotFoundException or FileNotFoundException)
        {
            throw new TcpFreezeException(operation, $"process {pid} exited while its sockets were being discovered", e);
        }
        catch (UnauthorizedAccessException e) when (pid is not null)
        {
            throw new TcpFreezeException(operation, ProcessSockets.PermissionDenied(path, pid.Value), e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TcpFreezeException(operation, $"cannot read {path} ({e.Message})", e);
        }
        return ParseTable(path, lines, operation);
    }

    private static List<ProcNetTcpEntry> ParseTable(string path, string[] lines, string operation)
    {
        var entries = new List<ProcNetTcpEntry>(lines.Length);
        foreach (string line in lines)
        {
            if (string.IsNullOrWhiteSpace(line) || ProcNetTcp.IsHeader(line))
                continue;
            try
            {
                entries.Add(ProcNetTcp.ParseLine(line));
            }
            catch (FormatException e)
            {
                throw new TcpFreezeException(operation, $"{path} has a line this version cannot read: {e.Message}", e);
            }
        }
        return entries;
    }
}
