using System.Diagnostics;
using System.Globalization;
using TcpFreeze.Ebpf.Interop;
using Interop;
using TcpFreeze.Native;

namespace TcpFreeze;

/// <summary>
/// An exclusive flock(2) on the pin root directory: serialises attach, detach, freeze
/// and thaw between processes, so two of them never interleave half-done changes.
/// bpffs holds no regular files, but a directory descriptor can carry the lock, which
/// closing the descriptor (disposing this) releases.
/// The wait is bounded (<see cref="FreezerOptions.LockTimeout"/>): a process that holds the
/// lock and hangs (or a user who may open the directory and flocks it on purpose) must not
/// block every other command, and a CRIU step, for ever. A timeout names the holder.
/// </summary>
internal sealed class PinLock : IDisposable
{
    private readonly FileDescriptorHandle _directory;

    private PinLock(FileDescriptorHandle directory) => _directory = directory;

    /// <exception cref="NativeCallException">The directory cannot be opened or locked, or another process held the lock longer than <paramref name="timeout"/>.</exception>
    public static PinLock Acquire(string directory, TimeSpan timeout)
    {
        FileDescriptorHandle fd = Libc.open(directory, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC);
        if (fd.IsInvalid)
        {
            var failure = NativeCallException.FromLastError($"open pin directory {directory}");
            fd.Dispose();
            throw failure;
        }
        try
        {
            WaitForLock(fd, directory, timeout);
        }
        catch
        {
            fd.Dispose();
            throw;
        }
        return new PinLock(fd);
    }

    /// <summary>
    /// The token the lock waits of the calling thread observe: set by the asynchronous calls of
    /// <see cref="TcpFreezer"/> around the synchronous one they run, so that every lock wait of
    /// that call (whichever method takes the lock) can be cancelled without a token parameter on each.
    /// </summary>
    [ThreadStatic] private static CancellationToken t_cancellation;

    /// <summary>Makes the calling thread's lock waits observe <paramref name="cancellation"/> until the scope is disposed.</summary>
    internal static CancellationScope ObserveCancellation(CancellationToken cancellation)
    {
        CancellationToken previous = t_cancellation;
        t_cancellation = cancellation;
        return new CancellationScope(previous);
    }

    internal readonly struct CancellationScope(CancellationToken previous) : IDisposable
    {
        public void Dispose() => t_cancellation = previous;
    }

    private static void WaitForLock(FileDescriptorHandle fd, string directory, TimeSpan timeout)
    {
        CancellationToken cancellation = t_cancellation;
        var waited = Stopwatch.StartNew();
        int pause = 1;
        while (true)
        {
            cancellation.ThrowIfCancellationRequested();
            if (Libc.flock(fd, Libc.LOCK_EX | Libc.LOCK_NB) == 0)
                return;
            int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            if (errno == Libc.EINTR)
                continue;
            if (errno != Libc.EWOULDBLOCK)
                throw new NativeCallException($"lock pin directory {directory}", errno);
            if (waited.Elapsed >= timeout)
                throw new NativeCallException($"lock pin directory {directory}", errno, TimeoutRemedy(fd, directory, timeout));
            // Short at first (a freeze holds the lock for milliseconds), then every 50 ms.
            cancellation.WaitHandle.WaitOne(TimeSpan.FromMilliseconds(Math.Min(pause, Math.Max(1, (timeout - waited.Elapsed).TotalMilliseconds))));
            pause = Math.Min(pause * 2, 50);
        }
    }

    private static string TimeoutRemedy(FileDescriptorHandle fd, string directory, TimeSpan timeout)
    {
        string seconds = timeout.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture);
        string holder = FindHolder(fd) is { } pid
            ? $"process {pid}{CommandOf(pid)} has held the lock on {directory} for more than {seconds} s"
            : $"another process has held the lock on {directory} for more than {seconds} s (its PID is not visible here)";
        return $"{holder}; if it is hung, stop it; otherwise wait longer (tcpfreeze --wait SECONDS, FreezerOptions.LockTimeout)";
    }

    /// <summary>The PID that /proc/locks gives for a flock on the same file as <paramref name="fd"/>, or null.</summary>
    internal static int? FindHolder(FileDescriptorHandle fd)
    {
        if (!Libc.TryGetFileId(fd, out uint major, out uint minor, out ulong inode))
            return null;
        string[] lines;
        try
        {
            lines = File.ReadAllLines("/proc/locks");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        return FindHolder(lines, major, minor, inode);
    }

    /// <summary>
    /// Parses /proc/locks lines ("1: FLOCK  ADVISORY  WRITE 1234 00:2a:5678 0 EOF"; blocked
    /// waiters are "1: -> FLOCK ..." and are skipped): the PID holding a flock on device
    /// MAJOR:MINOR (hex), inode INODE (decimal).
    /// </summary>
    internal static int? FindHolder(IEnumerable<string> lines, uint major, uint minor, ulong inode)
    {
        foreach (string line in lines)
        {
            string[] fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 6 || fields[1] != "FLOCK")
                continue;
            string[] id = fields[5].Split(':');
            if (id.Length == 3
                && uint.TryParse(id[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out uint lineMajor) && lineMajor == major
                && uint.TryParse(id[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out uint lineMinor) && lineMinor == minor
                && ulong.TryParse(id[2], NumberStyles.None, CultureInfo.InvariantCulture, out ulong lineInode) && lineInode == inode
                && int.TryParse(fields[4], NumberStyles.None, CultureInfo.InvariantCulture, out int pid) && pid > 0)
                return pid;
        }
        return null;
    }

    private static string CommandOf(int pid)
    {
        try
        {
            return $" ({File.ReadAllText($"/proc/{pid}/comm").Trim()})";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }

    public void Dispose() => _directory.Dispose();
}
