using System.Runtime.InteropServices;

namespace Ebpf.Interop;

/// <summary>The few libc calls the BPF layer needs: closing and duplicating descriptors,
/// formatting libbpf's log lines, and bpffs checks.</summary>
internal static unsafe partial class Libc
{
    private const string Library = "libc";

    [LibraryImport(Library, EntryPoint = "close", SetLastError = true)]
    internal static partial int close(int fd);

    [LibraryImport(Library, EntryPoint = "fcntl", SetLastError = true)]
    internal static partial int fcntl(int fd, int cmd, int arg);

    internal const int F_DUPFD_CLOEXEC = 1030;

    [LibraryImport(Library, EntryPoint = "vsnprintf")]
    internal static partial int vsnprintf(byte* buffer, nuint size, nint format, nint args);

    [LibraryImport(Library, EntryPoint = "statfs", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int statfs(string path, StatFs* buffer);

    [LibraryImport(Library, EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int mount(string source, string target, string fstype, nuint flags, nint data);

    /// <summary>struct statfs on x86-64 and arm64 (f_type is the first field, 8 bytes).</summary>
    [StructLayout(LayoutKind.Explicit, Size = 120)]
    internal struct StatFs
    {
        [FieldOffset(0)] public long Type;
    }

    [LibraryImport(Library, EntryPoint = "if_nametoindex", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial uint if_nametoindex(string name);

    [LibraryImport(Library, EntryPoint = "if_indextoname", SetLastError = true)]
    internal static partial nint if_indextoname(uint index, byte* name);

    internal const long BpfFsMagic = 0xCAFE4A11;

    /// <summary>Duplicates <paramref name="fd"/> with close-on-exec, so the copy has an owner of its own.</summary>
    internal static int Duplicate(int fd, string operation)
    {
        int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (copy < 0)
            throw NativeCallException.FromLastError(operation);
        return copy;
    }
}
