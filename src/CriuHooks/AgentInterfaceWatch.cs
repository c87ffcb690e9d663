using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Interop;
using TcpFreeze.Native;

namespace TcpFreeze.CriuHooks;

/// <summary>
/// The agent's watch on the interfaces of its network namespace. An interface that comes up while a pin root whose
/// steps the agent served has anything frozen is attached at once, so a frozen connection whose packets start to come
/// through it (a VPN or an overlay brought up during the image copy) is held, not reset. Without the agent nothing of
/// TcpFreeze runs between the dump and the restore, and pre-restore can only attach such an interface, and name it,
/// afterwards. The kernel says when (a NETLINK_ROUTE socket in the RTMGRP_LINK group): no polling.
/// </summary>
internal sealed class AgentInterfaceWatch(TextWriter log)
{
    private const int NETLINK_ROUTE = 0, RTMGRP_LINK = 1;
    private const ushort RTM_NEWLINK = 16;
    private const uint IFF_UP = 1;
    private const int ENOBUFS = 105;

    /// <summary>struct ifinfomsg: family, pad, type (u16), index (i32), flags (u32), change (u32); flags at 8.</summary>
    private const int IfInfoFlagsOffset = 8, IfInfoLength = 16;

    /// <summary>Link events come in bursts (a veth pair, an interface and its addresses): one look after the burst.</summary>
    private static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(20);

    private readonly ConcurrentDictionary<(string PinRoot, IngressHook Ingress, string Interfaces), FreezerOptions> _served = new();

    /// <summary>Remembers the pin root (and how it attaches) of a step the agent served.</summary>
    public void Remember(HookSettings settings)
        => _served[(settings.PinRoot, settings.Ingress, string.Join(',', settings.Interfaces ?? []))] = settings.ToFreezerOptions();

    /// <summary>Starts the watch on a background thread; false (with a line in the agent's log) when the kernel refused the socket.</summary>
    public unsafe bool Start()
    {
        FileDescriptorHandle socket = Libc.socket(Libc.AF_NETLINK, Libc.SOCK_RAW | Libc.SOCK_CLOEXEC, NETLINK_ROUTE);
        var address = new Libc.SockAddrNl { Family = Libc.AF_NETLINK, Groups = RTMGRP_LINK };
        if (socket.IsInvalid || Libc.bind(socket, &address, (uint)sizeof(Libc.SockAddrNl)) != 0)
        {
            log.WriteLine($"tcpfreeze-agent: no watch on new interfaces (netlink: {Errnos.Name(Marshal.GetLastPInvokeError())}); pre-restore attaches them instead");
            socket.Dispose();
            return false;
        }
        new Thread(() => Run(socket)) { IsBackground = true, Name = "tcpfreeze-agent interfaces" }.Start();
        return true;
    }

    private unsafe void Run(FileDescriptorHandle socket)
    {
        byte[] buffer = new byte[64 * 1024];
        using (socket)
        {
            for (;;)
            {
                bool up = false;
                fixed (byte* data = buffer)
                {
                    nint length = Libc.recv(socket, data, (nuint)buffer.Length, 0);
                    if (length < 0)
                    {
                        int errno = Marshal.GetLastPInvokeError();
                        if (errno is Errnos.EINTR)
                            continue;
                        if (errno is ENOBUFS)
                        {
                            up = true; // events were lost: look anyway
                        }
                        else
                        {
                            log.WriteLine($"tcpfreeze-agent: the watch on new interfaces ended ({Errnos.Name(errno)}); pre-restore attaches them instead");
                            return;
                        }
                    }
                    else
                    {
                        up = AnyLinkUp(buffer.AsSpan(0, (int)length));
                    }
                }
                if (up)
                {
                    Thread.Sleep(Settle);
                    AttachWhereFrozen();
                }
            }
        }
    }

    /// <summary>Whether a datagram of link messages says an interface is up (a new one, or one that came up).</summary>
    internal static bool AnyLinkUp(ReadOnlySpan<byte> datagram)
    {
        int headerSize = Marshal.SizeOf<Libc.NlMsgHdr>();
        for (int offset = 0; offset + headerSize <= datagram.Length;)
        {
            Libc.NlMsgHdr header = MemoryMarshal.Read<Libc.NlMsgHdr>(datagram[offset..]);
            if (header.Length < headerSize || header.Length > datagram.Length - offset)
                return false;
            if (header.Type == RTM_NEWLINK && header.Length >= headerSize + IfInfoLength
                && (MemoryMarshal.Read<uint>(datagram[(offset + headerSize + IfInfoFlagsOffset)..]) & IFF_UP) != 0)
                return true;
            offset += Libc.NetlinkAlign((int)header.Length);
        }
        return false;
    }

    /// <summary>Attaches each remembered pin root that has anything frozen to the interfaces that are up now.</summary>
    private void AttachWhereFrozen()
    {
        foreach (FreezerOptions options in _served.Values)
        {
            try
            {
                if (!TcpFreezer.IsAttached(options))
                    continue;
                int frozen;
                using (TcpFreezer open = TcpFreezer.Open(options))
                {
                    FreezerStatistics statistics = open.GetStatistics();
                    frozen = statistics.FrozenConnections + statistics.FrozenEndpoints;
                }
                if (frozen == 0)
                    continue;
                using TcpFreezer attached = TcpFreezer.Attach(options);
                string[] created = [.. attached.AttachedInterfaces.Where(i => i.Created).Select(i => i.Name)];
                if (created.Length > 0)
                    log.WriteLine($"tcpfreeze-agent: attached to {string.Join(", ", created)}, which came up while {frozen} entries under {options.PinRoot} were frozen");
            }
            catch (TcpFreezeException e)
            {
                log.WriteLine($"tcpfreeze-agent: attaching to a new interface under {options.PinRoot} failed: {e.Message}");
            }
        }
    }
}
