using System.Runtime.InteropServices;

namespace Interop;

internal static unsafe partial class Libc
{
    internal const int SO_RCVTIMEO = 20;

    [LibraryImport(Libraries.Libc, EntryPoint = "setsockopt", SetLastError = true)]
    internal static partial int setsockopt(FileDescriptorHandle socket, int level, int name, void* value, uint length);

    /// <summary>struct timeval (SO_RCVTIMEO on 64-bit Linux).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct TimeVal
    {
        public long Seconds;
        public long Microseconds;
    }
}
