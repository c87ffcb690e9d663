using System.Runtime.InteropServices;

namespace Ebpf.Interop;

/// <summary>Resolving a path and reading a file's owner and mode: what the pin-root trust check needs.</summary>
internal static unsafe partial class Libc
{
    private const int AT_FDCWD = -100, AT_SYMLINK_NOFOLLOW = 0x100;
    private const uint STATX_TYPE = 0x1, STATX_MODE = 0x2, STATX_UID = 0x8;

    [LibraryImport(Library, EntryPoint = "realpath", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint realpath(string path, nint resolved);

    [LibraryImport(Library, EntryPoint = "free")]
    private static partial void free(nint pointer);

    [LibraryImport(Library, EntryPoint = "geteuid")]
    internal static partial uint geteuid();

    [LibraryImport(Library, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    /// <summary>The canonical path (every link resolved), or null with errno set.</summary>
    internal static string? RealPath(string path)
    {
        nint resolved = realpath(path, 0);
        if (resolved == 0)
            return null;
        try
        {
            return Marshal.PtrToStringUTF8(resolved);
        }
        finally
        {
            free(resolved);
        }
    }

    /// <summary>
    /// Owner and mode (type and permission bits) of <paramref name="path"/> itself, not of what
    /// a link there points to. statx's layout is the same on every architecture: stx_uid is the
    /// u32 at offset 20 and stx_mode the u16 at 28 of a 256-byte struct.
    /// </summary>
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
}
