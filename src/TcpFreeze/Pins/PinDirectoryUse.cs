using Interop;

namespace TcpFreeze;

/// <summary>
/// A shared flock(2) on one namespace's pin directory, held by every open <see cref="TcpFreezer"/>
/// for its whole life: it says "a process is using this frozen set". An idle detach
/// (<see cref="TcpFreezer.DetachIfIdle"/>) detaches only when no other process holds it, so one
/// migration's clean-up can never pull the programs from under another that has attached and
/// is about to freeze (before: a post-resume detach between another tree's attach and freeze made
/// that freeze fail, "programs are not attached"). An explicit detach ignores it: the operator asked.
/// The pin lock (<see cref="PinLock"/>, on the pin root) still serialises the changes themselves.
/// </summary>
internal sealed class PinDirectoryUse : IDisposable
{
    private readonly FileDescriptorHandle _directory;

    private PinDirectoryUse(FileDescriptorHandle directory) => _directory = directory;

    /// <summary>
    /// Takes the shared lock on <paramref name="directory"/>, or returns null when the directory
    /// does not exist or cannot be locked (then this freezer simply does not count as a user; nothing
    /// else depends on it). An idle detach holds the exclusive lock only for the moment it detaches:
    /// the wait is bounded by <paramref name="timeout"/>.
    /// </summary>
    public static PinDirectoryUse? TryTake(string directory, TimeSpan timeout)
    {
        FileDescriptorHandle fd = Libc.open(directory, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC);
        if (fd.IsInvalid)
        {
            fd.Dispose();
            return null;
        }
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (Libc.flock(fd, Libc.LOCK_SH | Libc.LOCK_NB) != 0)
        {
            int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            if ((errno != Libc.EWOULDBLOCK && errno != Libc.EINTR) || waited.Elapsed >= timeout)
            {
                fd.Dispose();
                return null;
            }
            Thread.Sleep(1);
        }
        return new PinDirectoryUse(fd);
    }

    /// <summary>
    /// Whether another process holds <paramref name="directory"/> in use. When not, the exclusive
    /// lock taken to find out is returned (hold it while detaching, so no freezer opens meanwhile);
    /// when it is, or the directory is gone, <paramref name="exclusive"/> is null.
    /// </summary>
    public static bool IsUsedByOthers(string directory, out PinDirectoryUse? exclusive)
    {
        exclusive = null;
        FileDescriptorHandle fd = Libc.open(directory, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC);
        if (fd.IsInvalid)
        {
            fd.Dispose();
            return false;
        }
        if (Libc.flock(fd, Libc.LOCK_EX | Libc.LOCK_NB) != 0)
        {
            fd.Dispose();
            return true;
        }
        exclusive = new PinDirectoryUse(fd);
        return false;
    }

    public void Dispose() => _directory.Dispose();
}
