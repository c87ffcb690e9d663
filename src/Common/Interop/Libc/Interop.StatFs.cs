using System.Runtime.InteropServices;

namespace Interop;

internal static unsafe partial class Libc
{
    internal const long BpfFsMagic = 0xCAFE4A11;

    [LibraryImport(Libraries.Libc, EntryPoint = "statfs", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int statfs(string path, StatFs* buffer);

    /// <summary>struct statfs on x86-64 and arm64 (f_type is the first field, 8 bytes).</summary>
    [StructLayout(LayoutKind.Explicit, Size = 120)]
    internal struct StatFs
    {
        [FieldOffset(0)] public long Type;
    }
}
