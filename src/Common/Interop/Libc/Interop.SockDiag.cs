using System.Runtime.InteropServices;

namespace Interop;

/// <summary>
/// Netlink and the sock_diag structs (linux/netlink.h, linux/sock_diag.h, linux/inet_diag.h),
/// sent with <see cref="sendto"/> and read with <see cref="recv"/> on a <see cref="socket"/>.
/// A test compiles a C program against those headers and checks every size and offset here.
/// </summary>
internal static unsafe partial class Libc
{
    internal const int NETLINK_SOCK_DIAG = 4;

    internal const ushort NLMSG_NOOP = 1, NLMSG_ERROR = 2, NLMSG_DONE = 3, NLMSG_OVERRUN = 4;
    internal const ushort NLM_F_REQUEST = 0x1, NLM_F_ROOT = 0x100, NLM_F_MATCH = 0x200, NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
    internal const ushort SOCK_DIAG_BY_FAMILY = 20;

    /// <summary>NLMSG_ALIGN: netlink messages start on 4-byte boundaries.</summary>
    internal static int NetlinkAlign(int length) => (length + 3) & ~3;

    /// <summary>struct sockaddr_nl; port id 0 is the kernel.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct SockAddrNl
    {
        public ushort Family;
        public ushort Pad;
        public uint PortId;
        public uint Groups;
    }

    /// <summary>struct nlmsghdr.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct NlMsgHdr
    {
        public uint Length;
        public ushort Type;
        public ushort Flags;
        public uint Sequence;
        public uint PortId;
    }

    /// <summary>struct nlmsgerr: the payload of NLMSG_ERROR (error is a negative errno, 0 for an acknowledgement).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct NlMsgErr
    {
        public int Error;
        public NlMsgHdr Message;
    }

    /// <summary>struct inet_diag_sockid. Ports and addresses are in network byte order; IPv4 uses the first 4 address bytes.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct InetDiagSockId
    {
        public ushort SourcePort;
        public ushort DestinationPort;
        public fixed byte Source[16];
        public fixed byte Destination[16];
        public uint Interface;
        public fixed uint Cookie[2];
    }

    /// <summary>struct inet_diag_req_v2: which family, protocol and states to dump.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct InetDiagReqV2
    {
        public byte Family;
        public byte Protocol;
        public byte Extensions;
        public byte Pad;
        public uint States;
        public InetDiagSockId Id;
    }

    /// <summary>struct inet_diag_msg: one socket of a dump (attributes may follow it).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct InetDiagMsg
    {
        public byte Family;
        public byte State;
        public byte Timer;
        public byte Retransmits;
        public InetDiagSockId Id;
        public uint Expires;
        public uint ReceiveQueue;
        public uint SendQueue;
        public uint Uid;
        public uint Inode;
    }

    /// <summary>A request as sent: the netlink header followed by inet_diag_req_v2.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct InetDiagRequest
    {
        public NlMsgHdr Header;
        public InetDiagReqV2 Request;
    }
}
