using System.Runtime.InteropServices;

namespace TcpFreeze.Interop;

/// <summary>A non-blocking flock and statx of a descriptor (what the bounded pin lock needs), and the effective user.</summary>
internal static unsafe partial class Libc
{
    internal const int LOCK_NB = 4;
    internal const int EWOULDBLOCK = 11;
    private const int AT_EMPTY_PATH = 0x1000;
    private const uint STATX_INO = 0x100;

    [LibraryImport(Library, EntryPoint = "geteuid")]
    internal static partial uint geteuid();

    [LibraryImport(Library, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int statx(FileDescriptorHandle dirfd, string path, int flags, uint mask, byte* buffer);

    /// <summary>
    /// The device (major, minor) and inode of an open descriptor, as /proc/locks names them.
    /// statx's layout is the same on every architecture: stx_ino is the u64 at offset 32,
    /// stx_dev_major and stx_dev_minor the u32s at 136 and 140 of a 256-byte struct.
    /// </summary>
    internal static bool TryGetFileId(FileDescriptorHandle fd, out uint major, out uint minor, out ulong inode)
    {
        byte* buffer = stackalloc byte[256];
        new Span<byte>(buffer, 256).Clear();
        if (statx(fd, "", AT_EMPTY_PATH, STATX_INO, buffer) != 0)
        {
            (major, minor, inode) = (0, 0, 0);
            return false;
        }
        inode = *(ulong*)(buffer + 32);
        major = *(uint*)(buffer + 136);
        minor = *(uint*)(buffer + 140);
        return true;
    }
}
