using System.Runtime.InteropServices;

namespace Interop;

internal static unsafe partial class Libc
{
    internal const ushort AF_PACKET = 17;
    internal const uint IFF_UP = 0x1;

    [LibraryImport(Libraries.Libc, EntryPoint = "getifaddrs", SetLastError = true)]
    internal static partial int getifaddrs(IfAddrs** addresses);

    /// <summary>struct ifaddrs.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct IfAddrs
    {
        public IfAddrs* Next;
        public nint Name;
        public uint Flags;
        public SockAddrLl* Address;
        public nint Netmask;
        public nint BroadcastOrDestination;
        public nint Data;
    }

    /// <summary>struct sockaddr_ll (the AF_PACKET entries of getifaddrs).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct SockAddrLl
    {
        public ushort Family;
        public ushort Protocol;
        public int IfIndex;
        public ushort HaType;
        public byte PacketType;
        public byte AddressLength;
        public fixed byte Address[8];
    }
}
