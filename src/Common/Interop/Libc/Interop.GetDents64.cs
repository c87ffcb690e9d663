using System.Runtime.InteropServices;

namespace Interop;

/// <summary>
/// Listing a directory without building a string per entry: the descriptor scan reads one
/// link per open descriptor, thousands per discovery.
/// </summary>
internal static unsafe partial class Libc
{
    /// <summary>Where d_name starts in struct linux_dirent64 (after d_ino, d_off, d_reclen, d_type).</summary>
    internal const int DirentNameOffset = 19;

    /// <summary>Where d_reclen sits in struct linux_dirent64.</summary>
    internal const int DirentLengthOffset = 16;

    /// <summary>Fills <paramref name="buffer"/> with struct linux_dirent64 records; 0 at the end of the directory.</summary>
    [LibraryImport(Libraries.Libc, EntryPoint = "getdents64", SetLastError = true)]
    internal static partial nint getdents64(FileDescriptorHandle directory, byte* buffer, nuint length);
}
