using System.Runtime.InteropServices;

namespace Interop;

internal static unsafe partial class Libc
{
    [LibraryImport(Libraries.Libc, EntryPoint = "bind", SetLastError = true)]
    internal static partial int bind(FileDescriptorHandle socket, void* address, uint length);
}
