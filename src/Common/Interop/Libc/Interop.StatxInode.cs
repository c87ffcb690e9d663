namespace Interop;

internal static unsafe partial class Libc
{
    /// <summary>The inode of <paramref name="path"/> itself (a link is not followed), or 0 when it cannot be read.</summary>
    internal static ulong GetInode(string path)
    {
        byte* buffer = stackalloc byte[256];
        new Span<byte>(buffer, 256).Clear();
        return statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_INO, buffer) == 0 ? *(ulong*)(buffer + 32) : 0;
    }
}

internal static unsafe partial class Libc
{
    /// <summary>The inode of what <paramref name="path"/> names, links followed (a namespace's, for /proc/PID/ns/net), or 0 when it cannot be read.</summary>
    internal static ulong GetTargetInode(string path)
    {
        byte* buffer = stackalloc byte[256];
        new Span<byte>(buffer, 256).Clear();
        return statx(AT_FDCWD, path, 0, STATX_INO, buffer) == 0 ? *(ulong*)(buffer + 32) : 0;
    }
}
