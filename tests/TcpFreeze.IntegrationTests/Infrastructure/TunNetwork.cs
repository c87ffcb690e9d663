using System.Net;
using System.Net.Sockets;

namespace TcpFreeze.Tests.Infrastructure;

/// <summary>
/// Two network namespaces of this test's own joined only by a point-to-point (L3) link:
/// a TUN device in each (ARPHRD_NONE: frames start at the IP header, as with VPNs and
/// WireGuard) and a user-space forwarder that copies every packet one device sends into
/// the other. This kernel has no ipip/sit/gre/wireguard, so TUN is the L3 device there is.
/// Host A is 198.19.X.1 / 2001:db8:X:1::1, host B 198.19.X.2 / 2001:db8:X:1::2. Names
/// start with "tfl3" and this process's id. Removed (forwarder by PID, then the namespaces
/// with everything in them) on dispose.
/// </summary>
public sealed class TunNetwork : IDisposable
{
    private static int s_counter;

    /// <summary>
    /// Opens both TUN devices (one per namespace: a TUN device attaches in the namespace that
    /// opened /dev/net/tun, so the script enters B with setns after opening A's) and copies
    /// packets between them until stdin closes or the time limit ends. Bounded: it exits by
    /// itself after argv[4] seconds.
    /// </summary>
    private const string Forwarder = """
        import ctypes, fcntl, os, select, struct, sys, time
        TUNSETIFF, IFF_TUN, IFF_NO_PI, CLONE_NEWNET = 0x400454ca, 0x0001, 0x1000, 0x40000000
        def tun(name):
            fd = os.open('/dev/net/tun', os.O_RDWR)
            fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH', name.encode(), IFF_TUN | IFF_NO_PI))
            return fd
        a = tun(sys.argv[1])
        libc = ctypes.CDLL(None, use_errno=True)
        ns = os.open(sys.argv[3], os.O_RDONLY)
        if libc.setns(ns, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), 'setns ' + sys.argv[3])
        b = tun(sys.argv[2])
        peer = {a: b, b: a}
        print('ready', flush=True)
        deadline = time.monotonic() + float(sys.argv[4])
        while time.monotonic() < deadline:
            ready, _, _ = select.select([a, b, 0], [], [], 1.0)
            for fd in ready:
                if fd == 0:
                    if not os.read(0, 4096):
                        sys.exit(0)
                    continue
                packet = os.read(fd, 65536)
                try:
                    os.write(peer[fd], packet)
                except OSError:
                    pass  # the other device is down or gone: a lost packet, as on a wire
        """;

    private ScriptProcess? _forwarder;

    private TunNetwork(string a, string b, string device, int subnet)
    {
        NameA = a;
        NameB = b;
        Device = device;
        Subnet = subnet;
    }

    public string NameA { get; }
    public string NameB { get; }

    /// <summary>The TUN device's name, the same in both namespaces.</summary>
    public string Device { get; }

    public int Subnet { get; }
    public NetworkNamespace A => NetworkNamespace.Named(NameA);
    public NetworkNamespace B => NetworkNamespace.Named(NameB);

    public IPAddress AddressA(AddressFamily family) => family == AddressFamily.InterNetwork
        ? IPAddress.Parse($"198.19.{Subnet}.1") : IPAddress.Parse($"2001:db8:{Subnet:x}:1::1");

    public IPAddress AddressB(AddressFamily family) => family == AddressFamily.InterNetwork
        ? IPAddress.Parse($"198.19.{Subnet}.2") : IPAddress.Parse($"2001:db8:{Subnet:x}:1::2");

    /// <summary>Creates the namespaces, the TUN devices and their addresses, and starts the forwarder (bounded to <paramref name="lifetime"/>).</summary>
    public static TunNetwork Create(TimeSpan? lifetime = null)
    {
        int n = Interlocked.Increment(ref s_counter);
        int subnet = (Environment.ProcessId + n) % 250 + 1;
        string prefix = $"tfl3{Environment.ProcessId}x{n}";
        var network = new TunNetwork(prefix + "a", prefix + "b", $"tfl3{Environment.ProcessId}t", subnet);
        try
        {
            network.Build(lifetime ?? TimeSpan.FromMinutes(3));
            return network;
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    private void Build(TimeSpan lifetime)
    {
        Run.Checked("ip", "netns", "add", NameA);
        Run.Checked("ip", "netns", "add", NameB);
        foreach (string ns in new[] { NameA, NameB })
        {
            Run.Checked("ip", "-n", ns, "link", "set", "lo", "up");
            Run.Checked("ip", "-n", ns, "tuntap", "add", "dev", Device, "mode", "tun");
        }
        _forwarder = ScriptProcess.Start(NameA, Forwarder, Device, Device, $"/run/netns/{NameB}", ((int)lifetime.TotalSeconds).ToString());
        _forwarder.Expect("ready", TimeSpan.FromSeconds(10));
        Configure(NameA, AddressA(AddressFamily.InterNetwork), AddressA(AddressFamily.InterNetworkV6));
        Configure(NameB, AddressB(AddressFamily.InterNetwork), AddressB(AddressFamily.InterNetworkV6));
    }

    /// <summary>Prefix routes on the device: a point-to-point link needs no neighbour resolution, so the peer is simply on-link.</summary>
    private void Configure(string ns, IPAddress v4, IPAddress v6)
    {
        Run.Checked("ip", "-n", ns, "link", "set", Device, "up");
        Run.Checked("ip", "-n", ns, "addr", "add", $"{v4}/24", "dev", Device);
        Run.Checked("ip", "-n", ns, "addr", "add", $"{v6}/64", "dev", Device, "nodad");
    }

    public void Dispose()
    {
        _forwarder?.Dispose();
        foreach (string ns in new[] { NameA, NameB })
            Run.Capture("ip", "netns", "del", ns);
    }
}
