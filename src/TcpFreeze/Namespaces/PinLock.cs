using Ebpf.Interop;
using Interop;

namespace TcpFreeze;

/// <summary>
/// An exclusive flock(2) on the pin root directory: serialises attach, detach, freeze
/// and thaw between processes, so two of them never interleave half-done changes.
/// bpffs holds no regular files, but a directory descriptor can carry the lock, which
/// closing the descriptor (disposing this) releases.
/// </summary>
internal sealed class PinLock : IDisposable
{
    private readonly FileDescriptorHandle _directory;

    private PinLock(FileDescriptorHandle directory) => _directory = directory;

    /// <exception cref="NativeCallException">The directory cannot be opened or locked.</exception>
    public static PinLock Acquire(string directory)
    {
        FileDescriptorHandle fd = Libc.open(directory, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC);
        if (fd.IsInvalid)
        {
            var failure = NativeCallException.FromLastError($"open pin directory {directory}");
            fd.Dispose();
            throw failure;
        }
        if (Libc.flock(fd, Libc.LOCK_EX) != 0)
        {
            var failure = NativeCallException.FromLastError($"lock pin directory {directory}");
            fd.Dispose();
            throw failure;
        }
        return new PinLock(fd);
    }

    public void Dispose() => _directory.Dispose();
}
