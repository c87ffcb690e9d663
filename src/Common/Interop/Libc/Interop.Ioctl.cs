using System.Runtime.InteropServices;

namespace Interop;

internal static unsafe partial class Libc
{
    internal const int SOCK_DGRAM = 2;
    internal const nuint SIOCGIFHWADDR = 0x8927, SIOCGIFINDEX = 0x8933;

    /// <summary>ioctl with a struct ifreq (the interface requests of netdevice(7)).</summary>
    [LibraryImport(Libraries.Libc, EntryPoint = "ioctl", SetLastError = true)]
    internal static partial int ioctl(FileDescriptorHandle fd, nuint request, IfReq* ifreq);

    /// <summary>struct ifreq: the name, then a 24-byte union (sockaddr ifr_hwaddr, int ifr_ifindex, ...).</summary>
    [StructLayout(LayoutKind.Explicit, Size = 40)]
    internal struct IfReq
    {
        [FieldOffset(0)] public fixed byte Name[16];
        /// <summary>ifr_hwaddr.sa_family: the ARPHRD_* type (SIOCGIFHWADDR).</summary>
        [FieldOffset(16)] public ushort HardwareFamily;
        /// <summary>ifr_ifindex (SIOCGIFINDEX).</summary>
        [FieldOffset(16)] public int IfIndex;
    }
}
