using System.Runtime.InteropServices;
using Ebpf.Interop;
using Interop;

namespace TcpFreeze;

/// <summary>A network interface of the calling thread's namespace.</summary>
/// <param name="Name">Its name.</param>
/// <param name="Index">Its index.</param>
/// <param name="IsUp">Whether it is administratively up.</param>
/// <param name="HardwareType">Its ARPHRD_* type (1 Ethernet, 772 loopback).</param>
public sealed record NetworkInterfaceInfo(string Name, int Index, bool IsUp, int HardwareType)
{
    /// <summary>ARPHRD_ETHER.</summary>
    public const int Ethernet = 1;
    /// <summary>ARPHRD_LOOPBACK.</summary>
    public const int Loopback = 772;

    /// <summary>Whether the TcpFreeze programs can parse its frames (they expect an Ethernet header).</summary>
    public bool IsSupported => HardwareType is Ethernet or Loopback;

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
            for (Libc.IfAddrs* entry = head; entry != null; entry = entry->Next)
            {
                if (entry->Address == null || entry->Address->Family != Libc.AF_PACKET)
                    continue;
                string name = Marshal.PtrToStringUTF8(entry->Name) ?? string.Empty;
                byIndex[entry->Address->IfIndex] = new NetworkInterfaceInfo(name, entry->Address->IfIndex, (entry->Flags & Libc.IFF_UP) != 0, entry->Address->HaType);
            }
            return byIndex.Values.ToList();
        }
        finally
        {
            Libc.freeifaddrs(head);
        }
    }
}
