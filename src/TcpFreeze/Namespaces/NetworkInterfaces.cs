using System.Runtime.InteropServices;
using TcpFreeze.Ebpf.Interop;
using Interop;
using TcpFreeze.Native;

namespace TcpFreeze;

/// <summary>A network interface of the calling thread's namespace.</summary>
/// <param name="Name">Its name.</param>
/// <param name="Index">Its index.</param>
/// <param name="IsUp">Whether it is administratively up.</param>
/// <param name="HardwareType">Its ARPHRD_* type (1 Ethernet, 772 loopback, 65534 tun and WireGuard, 768 ipip, ...).</param>
/// <remarks>Thread safety: immutable; safe to share between threads.</remarks>
public sealed record NetworkInterfaceInfo(string Name, int Index, bool IsUp, int HardwareType)
{
    /// <summary>ARPHRD_ETHER.</summary>
    public const int Ethernet = 1;
    /// <summary>ARPHRD_LOOPBACK.</summary>
    public const int Loopback = 772;

    /// <summary>
    /// The ARPHRD_* types of point-to-point (L3) devices, whose frames start at the IP header:
    /// NONE (tun, WireGuard, xfrm), PPP, RAWIP (cellular modems), TUNNEL (ipip, vti), TUNNEL6
    /// (ip6tnl), SIT, IPGRE and IP6GRE. Ethernet-framed tunnels (gretap, vxlan) are
    /// <see cref="Ethernet"/>.
    /// </summary>
    private static readonly int[] Layer3Types = [0xFFFE, 512, 519, 768, 769, 776, 778, 823];

    /// <summary>Whether the TcpFreeze programs can parse its frames: Ethernet, loopback, or an L3 device (<see cref="IsLayer3"/>).</summary>
    public bool IsSupported => HardwareType is Ethernet or Loopback || IsLayer3;

    /// <summary>
    /// Whether it is a point-to-point (L3) device whose frames start at the IP header (tun,
    /// WireGuard, PPP, ipip/sit/gre tunnels): TcpFreeze's L3 programs run there, as TC filters.
    /// </summary>
    public bool IsLayer3 => Array.IndexOf(Layer3Types, HardwareType) >= 0;

    /// <summary>
    /// The ARPHRD_* types of devices that never carry IP: CAN (280), MCTP (290), 802.11 monitor
    /// (803), 802.15.4 and its monitor (804, 805; IPv6 goes over a 6LoWPAN device on top),
    /// Phonet (820, 821), CAIF (822), nlmon (824), vsockmon (826).
    /// </summary>
    private static readonly int[] NonIpTypes = [280, 290, 803, 804, 805, 820, 821, 822, 824, 826];

    /// <summary>Whether it is a device that never carries IP (CAN, nlmon, ...), which no freeze needs to cover.</summary>
    public bool NeverCarriesIp => Array.IndexOf(NonIpTypes, HardwareType) >= 0;

    /// <summary>
    /// Lists the interfaces of the calling thread's network namespace (getifaddrs
    /// asks the kernel over netlink, so unlike /sys/class/net this is right inside
    /// any namespace).
    /// </summary>
    /// <exception cref="TcpFreezeException">getifaddrs failed.</exception>
    public static IReadOnlyList<NetworkInterfaceInfo> List() => TcpFreezeException.Guard(ListHere);

    /// <summary>Like <see cref="List"/>, for callers inside the library (a failure is a <see cref="NativeCallException"/>).</summary>
    internal static unsafe IReadOnlyList<NetworkInterfaceInfo> ListHere()
    {
        Libc.IfAddrs* head;
        if (Libc.getifaddrs(&head) != 0)
            throw NativeCallException.FromLastError("list network interfaces");
        try
        {
            var byIndex = new SortedDictionary<int, NetworkInterfaceInfo>();
            var withoutAddress = new Dictionary<string, uint>();
            for (Libc.IfAddrs* entry = head; entry != null; entry = entry->Next)
            {
                string name = Marshal.PtrToStringUTF8(entry->Name) ?? string.Empty;
                if (entry->Address == null)
                {
                    // glibc gives a link without a hardware address (tun, WireGuard, ipip, PPP:
                    // exactly the L3 devices) no AF_PACKET address, so neither index nor type.
                    withoutAddress.TryAdd(name, entry->Flags);
                    continue;
                }
                if (entry->Address->Family != Libc.AF_PACKET)
                    continue;
                byIndex[entry->Address->IfIndex] = new NetworkInterfaceInfo(name, entry->Address->IfIndex, (entry->Flags & Libc.IFF_UP) != 0, entry->Address->HaType);
            }
            foreach ((string name, uint flags) in withoutAddress)
                if (!byIndex.Values.Any(i => i.Name == name) && AskKernel(name) is var (index, type))
                    byIndex[index] = new NetworkInterfaceInfo(name, index, (flags & Libc.IFF_UP) != 0, type);
            return byIndex.Values.ToList();
        }
        finally
        {
            Libc.freeifaddrs(head);
        }
    }

    /// <summary>
    /// The index and ARPHRD_* type of interface <paramref name="name"/> of the calling thread's
    /// namespace (the socket's), from the SIOCGIFINDEX and SIOCGIFHWADDR requests; null when it
    /// has gone meanwhile.
    /// </summary>
    private static unsafe (int Index, int Type)? AskKernel(string name)
    {
        using FileDescriptorHandle socket = Libc.socket(Libc.AF_INET, Libc.SOCK_DGRAM | Libc.SOCK_CLOEXEC, 0);
        if (socket.IsInvalid)
            throw NativeCallException.FromLastError($"open a socket to ask for interface {name}");
        Libc.IfReq request = default;
        byte[] bytes = System.Text.Encoding.UTF8.GetBytes(name);
        if (bytes.Length > 15)
            return null;
        for (int i = 0; i < bytes.Length; i++)
            request.Name[i] = bytes[i];
        if (Libc.ioctl(socket, Libc.SIOCGIFINDEX, &request) != 0)
            return Marshal.GetLastPInvokeError() == Errnos.ENODEV ? null : throw NativeCallException.FromLastError($"get the index of interface {name}");
        int index = request.IfIndex;
        if (Libc.ioctl(socket, Libc.SIOCGIFHWADDR, &request) != 0)
            return Marshal.GetLastPInvokeError() == Errnos.ENODEV ? null : throw NativeCallException.FromLastError($"get the hardware type of interface {name}");
        return (index, request.HardwareFamily);
    }
}
