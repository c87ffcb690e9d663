namespace Interop;

internal static unsafe partial class Libc
{
    /// <summary>The device (major, minor) and inode of an open descriptor, as /proc/locks names them.</summary>
    internal static bool TryGetFileId(FileDescriptorHandle fd, out uint major, out uint minor, out ulong inode)
    {
        byte* buffer = stackalloc byte[256];
        new Span<byte>(buffer, 256).Clear();
        bool added = false;
        try
        {
            fd.DangerousAddRef(ref added);
            if (statx((int)fd.DangerousGetHandle(), "", AT_EMPTY_PATH, STATX_INO, buffer) != 0)
            {
                (major, minor, inode) = (0, 0, 0);
                return false;
            }
        }
        finally
        {
            if (added)
                fd.DangerousRelease();
        }
        inode = *(ulong*)(buffer + 32);
        major = *(uint*)(buffer + 136);
        minor = *(uint*)(buffer + 140);
        return true;
    }
}
