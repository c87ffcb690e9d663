using System.Globalization;
using Interop;
using TcpFreeze.CriuHooks.Interop;

namespace TcpFreeze.CriuHooks;

/// <summary>What <see cref="TcpRepairRecovery.TakeOutOfRepair"/> did: sockets released, sockets that stayed in repair mode and why.</summary>
internal sealed record RepairRecoveryResult(int Processes, int TcpSockets, int Released, IReadOnlyList<string> Failures)
{
    public override string ToString()
        => $"took {Released} of {TcpSockets} TCP sockets in {Processes} processes out of TCP repair mode" +
           (Failures.Count == 0 ? "" : $"; {Failures.Count} stayed in it: {string.Join("; ", Failures.Take(5))}");
}

/// <summary>
/// Takes the sockets of a dumped tree out of the TCP repair mode a dead CRIU left them in.
/// From its first "Turning repair on" CRIU holds each established socket of the tree in repair
/// mode (TCP_REPAIR = 1, set on its own copy of the descriptor) and takes it out only at the end
/// of a dump that fails or leaves the tasks running. A CRIU killed in between leaves them in it,
/// and the tasks run on (its parasite returns them to their own code when its control socket
/// closes): there, recv fails with EPERM and send with EINVAL, so a server closes the connection
/// at its next read, silently (a repair-mode socket closes without a FIN), and the peer's next
/// segment is answered with a reset.
/// The dump watcher calls this once it knows CRIU is gone and the tasks run on, before it thaws,
/// so that no packet reaches a socket still in repair mode.
/// </summary>
/// <remarks>
/// Every TCP socket of the tree that is in repair mode is released, not only those the manifest
/// lists: only CRIU put them there, and a connection opened between pre-dump and CRIU's freeze
/// (not in the manifest yet) is as broken as the others. What CRIU's own release does and this
/// cannot: restore SO_REUSEADDR (repair mode overwrote it, CRIU kept the old value in its memory),
/// so a released socket reads SO_REUSEADDR 0.
/// </remarks>
internal static class TcpRepairRecovery
{
    public static RepairRecoveryResult TakeOutOfRepair(int rootPid, string procRoot = "/proc")
    {
        List<int> tree = DumpedTree.Members(procRoot, rootPid);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var failures = new List<string>();
        int tcp = 0, released = 0;
        foreach (int pid in tree)
        {
            using FileDescriptorHandle pidfd = Libc.PidfdOpen(pid);
            if (pidfd.IsInvalid)
                continue; // exited since the walk: its sockets are closed or shared with a process still listed
            foreach ((int fd, string target) in Sockets(procRoot, pid))
            {
                if (!seen.Add(target))
                    continue; // the same socket through another descriptor or process
                using FileDescriptorHandle socket = Libc.PidfdGetfd(pidfd, fd);
                if (socket.IsInvalid)
                {
                    int errno = TcpRepairCalls.LastError;
                    if (errno is not (TcpRepairCalls.EBADF or TcpRepairCalls.ESRCH)) // closed, or the process exited, meanwhile
                        failures.Add($"PID {pid} fd {fd} ({target}): pidfd_getfd: {TcpRepairCalls.Describe(errno)}");
                    continue;
                }
                if (!TcpRepairCalls.IsTcp(socket))
                    continue;
                tcp++;
                int repair = TcpRepairCalls.GetRepair(socket);
                if (repair == 0)
                    continue;
                if (repair < 0)
                    failures.Add($"PID {pid} fd {fd} ({target}): getsockopt TCP_REPAIR: {TcpRepairCalls.Describe(TcpRepairCalls.LastError)}");
                else if (TcpRepairCalls.SetRepairOff(socket) != 0)
                    failures.Add($"PID {pid} fd {fd} ({target}): setsockopt TCP_REPAIR off: {TcpRepairCalls.Describe(TcpRepairCalls.LastError)}");
                else
                    released++;
            }
        }
        return new RepairRecoveryResult(tree.Count, tcp, released, failures);
    }

    /// <summary>The socket descriptors of a process: (fd, "socket:[INODE]").</summary>
    private static List<(int Fd, string Target)> Sockets(string procRoot, int pid)
    {
        var sockets = new List<(int, string)>();
        try
        {
            foreach (string entry in Directory.EnumerateFileSystemEntries(Path.Combine(procRoot, Invariant(pid), "fd")))
            {
                if (!int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out int fd))
                    continue;
                string? target = TryReadLink(entry);
                if (target is not null && target.StartsWith("socket:[", StringComparison.Ordinal))
                    sockets.Add((fd, target));
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // the process exited during the scan
        }
        return sockets;
    }

    private static string? TryReadLink(string path)
    {
        try
        {
            return new FileInfo(path).LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);
}
