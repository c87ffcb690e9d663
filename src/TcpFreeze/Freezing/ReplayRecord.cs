using System.Runtime.InteropServices;

namespace TcpFreeze;

/// <summary>
/// The value of the replay map: <c>struct tf_replay</c> in bpf/tcpfreeze.h (LayoutTests prove
/// the two match). The peer's last data segment that a connection entry dropped on ingress:
/// the first <see cref="Capacity"/> bytes of its IP packet, for the replay a thaw does
/// (<see cref="Resume.SegmentReplay"/>).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct ReplayRecord
{
    /// <summary>TF_REPLAY_BYTES: how much of the IP packet a record keeps.</summary>
    public const int Capacity = 2048;

    /// <summary>CLOCK_MONOTONIC of the drop, in nanoseconds.</summary>
    public ulong RecordedNs;

    /// <summary>4 or 6 (<c>TF_FAMILY_*</c>).</summary>
    public byte Family;

    public byte Pad;

    /// <summary>Offset of the TCP header in <see cref="Bytes"/>.</summary>
    public ushort TcpOffset;

    /// <summary>Bytes of the IP packet kept in <see cref="Bytes"/>.</summary>
    public ushort Captured;

    public ushort Reserved;

    /// <summary>The whole IP packet's length, from its length field.</summary>
    public uint IpLength;

    public uint Reserved2;

    /// <summary>The IP packet from its first byte, <see cref="Captured"/> of them valid.</summary>
    public fixed byte Bytes[Capacity];

    /// <summary>The kept bytes of the IP packet (a copy).</summary>
    public readonly byte[] Packet()
    {
        int length = Math.Min((int)Captured, Capacity);
        fixed (byte* bytes = Bytes)
            return new ReadOnlySpan<byte>(bytes, length).ToArray();
    }
}
