using System.Runtime.InteropServices;
using Ebpf.Interop;
using TcpFreeze.Interop;

namespace TcpFreeze;

/// <summary>
/// An exclusive flock(2) on the pin root directory: serialises attach, detach, freeze
/// and thaw between processes, so two of them never interleave half-done changes.
/// bpffs holds no regular files, but a directory descriptor can carry the lock.
/// </summary>
internal sealed class PinLock : IDisposable
{
    private int _fd;

    private PinLock(int fd) => _fd = fd;

    public static PinLock Acquire(string directory)
    {
        int fd = Libc.open(directory, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC);
        if (fd < 0)
            throw new BpfException($"open pin directory {directory}", Marshal.GetLastPInvokeError());
        if (Libc.flock(fd, Libc.LOCK_EX) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            Libc.close(fd);
            throw new BpfException($"lock pin directory {directory}", errno);
        }
        return new PinLock(fd);
    }

    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0)
            Libc.close(fd); // closing the last descriptor releases the lock
    }
}
