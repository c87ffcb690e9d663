using System.Buffers.Binary;
using TcpFreeze.CriuHooks;

namespace TcpFreeze.Tests.CriuHooks;

/// <summary>The agent's reading of the kernel's link messages (struct nlmsghdr + struct ifinfomsg).</summary>
public sealed class AgentInterfaceWatchTests
{
    private const ushort NewLink = 16, DeleteLink = 17;

    /// <summary>One netlink message: a 16-byte header, then ifinfomsg (family, pad, type, index, flags, change).</summary>
    private static byte[] Message(ushort type, uint flags, int length = 32)
    {
        byte[] message = new byte[length];
        BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)length);
        BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(4), type);
        if (length >= 32)
        {
            BinaryPrimitives.WriteInt32LittleEndian(message.AsSpan(20), 7);
            BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(24), flags);
        }
        return message;
    }

    [Fact]
    public void A_new_link_that_is_up_counts_and_one_that_is_down_or_deleted_does_not()
    {
        Assert.True(AgentInterfaceWatch.AnyLinkUp(Message(NewLink, flags: 0x1 | 0x40)));
        Assert.False(AgentInterfaceWatch.AnyLinkUp(Message(NewLink, flags: 0x1000)));
        Assert.False(AgentInterfaceWatch.AnyLinkUp(Message(DeleteLink, flags: 0x1)));
    }

    [Fact]
    public void Every_message_of_a_datagram_is_read_and_a_cut_one_is_not_trusted()
    {
        Assert.True(AgentInterfaceWatch.AnyLinkUp([.. Message(NewLink, 0), .. Message(DeleteLink, 1), .. Message(NewLink, 1)]));
        Assert.False(AgentInterfaceWatch.AnyLinkUp(Message(NewLink, 1)[..20])); // claims 32 bytes, has 20
        Assert.False(AgentInterfaceWatch.AnyLinkUp(Message(NewLink, 1, length: 20))); // too short for an ifinfomsg
        Assert.False(AgentInterfaceWatch.AnyLinkUp([]));
    }
}
