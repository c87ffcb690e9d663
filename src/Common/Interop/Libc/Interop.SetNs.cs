using System.Runtime.InteropServices;

namespace Interop;

internal static partial class Libc
{
    internal const int CLONE_NEWNET = 0x40000000;

    [LibraryImport(Libraries.Libc, EntryPoint = "setns", SetLastError = true)]
    internal static partial int setns(FileDescriptorHandle fd, int nstype);
}
