using System.Runtime.InteropServices;

namespace Interop;

/// <summary>
/// statx(2), and what the callers read of it. Its layout is the same on every architecture
/// (struct stat's is not): in the 256-byte struct statx, stx_uid is the u32 at offset 20,
/// stx_mode the u16 at 28, stx_ino the u64 at 32, stx_size the u64 at 40, stx_dev_major and
/// stx_dev_minor the u32s at 136 and 140.
/// </summary>
internal static unsafe partial class Libc
{
    private const int AT_FDCWD = -100, AT_SYMLINK_NOFOLLOW = 0x100, AT_EMPTY_PATH = 0x1000;
    private const uint STATX_TYPE = 0x1, STATX_MODE = 0x2, STATX_UID = 0x8, STATX_INO = 0x100, STATX_SIZE = 0x200;
    internal const int S_IFMT = 0xF000, S_IFREG = 0x8000, S_IFDIR = 0x4000, S_IFIFO = 0x1000, S_IFCHR = 0x2000, S_IFBLK = 0x6000, S_IFSOCK = 0xC000;

    [LibraryImport(Libraries.Libc, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    /// <summary>Owner and mode (type and permission bits) of <paramref name="path"/> itself, not of what a link there points to.</summary>
    internal static bool TryGetOwnerAndMode(string path, out uint uid, out uint mode)
    {
        byte* buffer = stackalloc byte[256];
        new Span<byte>(buffer, 256).Clear();
        if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_MODE | STATX_UID, buffer) != 0)
        {
            (uid, mode) = (0, 0);
            return false;
        }
        uid = *(uint*)(buffer + 20);
        mode = *(ushort*)(buffer + 28);
        return true;
    }

    /// <summary>The file type (S_IF* bits) and size of an open descriptor; false with errno set when the call fails.</summary>
    internal static bool TryStatDescriptor(int fd, out int type, out long size)
        => TryStatDescriptor(fd, out type, out size, out _, out _);

    /// <summary>
    /// The file type (S_IF* bits), size, owner and permission bits (the low 12 bits of the mode) of an
    /// open descriptor; false with errno set when the call fails. Judging the descriptor, not the path,
    /// means the file judged is the file read, whatever is renamed meanwhile.
    /// </summary>
    internal static bool TryStatDescriptor(int fd, out int type, out long size, out uint uid, out uint permissions)
    {
        byte* buffer = stackalloc byte[256];
        new Span<byte>(buffer, 256).Clear();
        if (statx(fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_MODE | STATX_UID | STATX_SIZE, buffer) != 0)
        {
            (type, size, uid, permissions) = (0, 0, 0, 0);
            return false;
        }
        ushort mode = *(ushort*)(buffer + 28);
        type = mode & S_IFMT;
        permissions = (uint)mode & 0xFFF;
        uid = *(uint*)(buffer + 20);
        size = *(long*)(buffer + 40);
        return true;
    }
}
