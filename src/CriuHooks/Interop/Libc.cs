using System.Runtime.InteropServices;

namespace TcpFreeze.CriuHooks.Interop;

/// <summary>The libc calls of the hook: process descriptors, polling, detaching the watcher.</summary>
internal static unsafe partial class Libc
{
    private const string Library = "libc";
    private const long SysPidfdOpen = 434; // the same number on x86-64 and arm64

    internal const short POLLIN = 0x1;
    internal const int O_RDWR = 2, O_WRONLY = 1, O_CREAT = 0x40, O_APPEND = 0x400, O_CLOEXEC = 0x80000;

    [LibraryImport(Library, EntryPoint = "syscall", SetLastError = true)]
    private static partial long syscall(long number, int pid, uint flags);

    [LibraryImport(Library, EntryPoint = "poll", SetLastError = true)]
    internal static partial int poll(PollFd* fds, nuint count, int timeoutMs);

    [LibraryImport(Library, EntryPoint = "close")]
    internal static partial int close(int fd);

    [LibraryImport(Library, EntryPoint = "setsid")]
    internal static partial int setsid();

    [LibraryImport(Library, EntryPoint = "getppid")]
    internal static partial int getppid();

    [LibraryImport(Library, EntryPoint = "dup2")]
    internal static partial int dup2(int from, int to);

    [LibraryImport(Library, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int open(string path, int flags, int mode);

    [StructLayout(LayoutKind.Sequential)]
    internal struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    /// <summary>A descriptor that becomes readable when process <paramref name="pid"/> exits; invalid if it is gone.</summary>
    internal static PidFd PidfdOpen(int pid) => new((int)syscall(SysPidfdOpen, pid, 0));
}
