using System.Runtime.InteropServices;

namespace TcpFreeze.Interop;

/// <summary>
/// Listing a directory and reading symbolic links without building a string per entry:
/// the descriptor scan reads one link per open descriptor, thousands per discovery.
/// </summary>
internal static unsafe partial class Libc
{
    /// <summary>Where d_name starts in struct linux_dirent64 (after d_ino, d_off, d_reclen, d_type).</summary>
    internal const int DirentNameOffset = 19;

    /// <summary>Where d_reclen sits in struct linux_dirent64.</summary>
    internal const int DirentLengthOffset = 16;

    [LibraryImport(Library, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial FileDescriptorHandle OpenHandle(string path, int flags);

    /// <summary>Fills <paramref name="buffer"/> with struct linux_dirent64 records; 0 at the end of the directory.</summary>
    [LibraryImport(Library, EntryPoint = "getdents64", SetLastError = true)]
    internal static partial nint getdents64(FileDescriptorHandle directory, byte* buffer, nuint length);

    [LibraryImport(Library, EntryPoint = "readlinkat", SetLastError = true)]
    internal static partial nint readlinkat(FileDescriptorHandle directory, byte* name, byte* buffer, nuint length);

    [LibraryImport(Library, EntryPoint = "readlink", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint readlink(string path, byte* buffer, nuint length);

    /// <summary>
    /// The target of the link at <paramref name="path"/> written into <paramref name="target"/>
    /// (not NUL-terminated): its length, or -1 when it cannot be read or does not fit.
    /// </summary>
    internal static int ReadLink(string path, Span<byte> target)
    {
        fixed (byte* buffer = target)
        {
            nint length = readlink(path, buffer, (nuint)target.Length);
            return length < 0 || length >= target.Length ? -1 : (int)length;
        }
    }
}
