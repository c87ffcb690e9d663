using System.Runtime.InteropServices;

namespace Interop;

internal static unsafe partial class Libc
{
    [LibraryImport(Libraries.Libc, EntryPoint = "readlink", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
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
