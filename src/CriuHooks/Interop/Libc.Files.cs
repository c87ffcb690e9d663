using System.Runtime.InteropServices;

namespace TcpFreeze.CriuHooks.Interop;

/// <summary>Opening a file without following a link or blocking on a FIFO, and asking what it is.</summary>
internal static unsafe partial class Libc
{
    internal const int O_RDONLY = 0, O_NONBLOCK = 0x800, O_NOFOLLOW = 0x20000;
    private const int AT_EMPTY_PATH = 0x1000;
    private const uint STATX_TYPE = 0x1, STATX_SIZE = 0x200;
    internal const int S_IFMT = 0xF000, S_IFREG = 0x8000, S_IFDIR = 0x4000, S_IFIFO = 0x1000, S_IFCHR = 0x2000, S_IFBLK = 0x6000, S_IFSOCK = 0xC000;

    [LibraryImport(Library, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    /// <summary>
    /// The file type (S_IF* bits) and size of an open descriptor. statx's layout is the same
    /// on every architecture (struct stat's is not): stx_mode is the u16 at offset 28,
    /// stx_size the u64 at offset 40 of a 256-byte struct.
    /// </summary>
    /// <returns>False with errno set when the call fails.</returns>
    internal static bool TryStatDescriptor(int fd, out int type, out long size)
    {
        byte* buffer = stackalloc byte[256];
        new Span<byte>(buffer, 256).Clear();
        if (statx(fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_SIZE, buffer) != 0)
        {
            (type, size) = (0, 0);
            return false;
        }
        type = *(ushort*)(buffer + 28) & S_IFMT;
        size = *(long*)(buffer + 40);
        return true;
    }
}
