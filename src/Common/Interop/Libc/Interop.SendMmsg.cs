using System.Runtime.InteropServices;

namespace Interop;

internal static unsafe partial class Libc
{
    internal const int SOL_RAW = 255, ICMP_FILTER = 1, ICMP6_FILTER = 1;
    internal const int UIO_MAXIOV = 1024;
    internal const int EINTR = 4;

    [StructLayout(LayoutKind.Sequential)]
    internal struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    /// <summary>struct msghdr (56 bytes on LP64).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Vector;
        public nuint VectorLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    /// <summary>struct mmsghdr (64 bytes on LP64).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct MMsgHdr
    {
        public MsgHdr Header;
        public uint Length;
    }

    [StructLayout(LayoutKind.Sequential, Size = 16)]
    internal struct SockAddrIn;

    [StructLayout(LayoutKind.Sequential, Size = 28)]
    internal struct SockAddrIn6;

    [LibraryImport(Libraries.Libc, EntryPoint = "sendmmsg", SetLastError = true)]
    internal static partial int sendmmsg(SafeHandle socket, MMsgHdr* messages, uint count, int flags);
}
