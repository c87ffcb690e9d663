using System.Runtime.InteropServices;

namespace TcpFreeze;

/// <summary>
/// The value of both freeze maps: <c>struct tf_entry</c> in bpf/tcpfreeze.h (LayoutTests
/// prove the two match). To change the layout, change both, then
/// <see cref="Renewed"/> (what a re-freeze keeps); <see cref="KernelObjects"/> takes the
/// size from this struct and <see cref="FrozenSet{TKey}"/> stores whatever it holds.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct FreezeEntry
{
    /// <summary>CLOCK_MONOTONIC deadline in nanoseconds; 0 for no lease.</summary>
    public ulong DeadlineNs;

    /// <summary>Packets dropped for the key.</summary>
    public ulong Dropped;

    /// <summary>CLOCK_MONOTONIC of the first drop in nanoseconds; 0 when nothing was dropped.</summary>
    public ulong FirstDropNs;

    /// <summary>Sequence number (network byte order) of the last data segment dropped on ingress: the peer's.</summary>
    public uint RemoteSeq;

    /// <summary>Sequence number (network byte order) of the last data segment dropped on egress: this host's socket's.</summary>
    public uint LocalSeq;

    /// <summary>Data segments (or SYN/FIN) dropped on ingress; 0 means <see cref="RemoteSeq"/> is not set.</summary>
    public uint RemoteDataDrops;

    /// <summary>Data segments (or SYN/FIN) dropped on egress; 0 means <see cref="LocalSeq"/> is not set.</summary>
    public uint LocalDataDrops;

    /// <summary><c>TF_ENTRY_*</c> flags: <see cref="JustInTimeFlag"/>.</summary>
    public uint Flags;

    /// <summary>Zero: keeps the layout a multiple of 8 bytes, as the C struct is.</summary>
    public uint Reserved;

    /// <summary><c>TF_ENTRY_JUST_IN_TIME</c>: drop only while the key's local socket is in repair mode or absent (<see cref="FreezeTiming.JustInTime"/>).</summary>
    public const uint JustInTimeFlag = 1;

    /// <summary>How this entry holds its key.</summary>
    public readonly FreezeTiming Timing => (Flags & JustInTimeFlag) != 0 ? FreezeTiming.JustInTime : FreezeTiming.Now;

    /// <summary>The peer's recorded sequence number in host byte order; null when no data segment of it was dropped.</summary>
    public readonly uint? RemoteSequence => RemoteDataDrops == 0 ? null : NetworkToHost(RemoteSeq);

    /// <summary>This host's socket's recorded sequence number in host byte order; null when none of its data segments was dropped.</summary>
    public readonly uint? LocalSequence => LocalDataDrops == 0 ? null : NetworkToHost(LocalSeq);

    /// <summary>The entry as if <paramref name="drops"/> data segments of the peer, the last at <paramref name="sequence"/> (host order), had been dropped.</summary>
    public readonly FreezeEntry WithRemoteSequence(uint sequence, uint drops)
    {
        FreezeEntry entry = this;
        entry.RemoteSeq = NetworkToHost(sequence);
        entry.RemoteDataDrops = drops;
        return entry;
    }

    /// <summary>Network to host byte order, and back (the same swap).</summary>
    private static uint NetworkToHost(uint value) => BitConverter.IsLittleEndian ? System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(value) : value;

    /// <summary>
    /// The value for a key frozen anew. A key frozen already keeps what the programs recorded
    /// (drop counts and the sequence numbers the resume kick needs) and gets the new lease and the
    /// new timing: the latest freeze of a key says how it is held, as it says for how long.
    /// </summary>
    public static FreezeEntry Renewed(FreezeEntry? old, ulong deadlineNs, FreezeTiming timing = FreezeTiming.Now)
    {
        FreezeEntry entry = old ?? default;
        entry.DeadlineNs = deadlineNs;
        entry.Flags = timing == FreezeTiming.JustInTime ? entry.Flags | JustInTimeFlag : entry.Flags & ~JustInTimeFlag;
        return entry;
    }

    /// <summary>How long the lease still runs: null for no lease, zero once it has ended.</summary>
    public readonly TimeSpan? Remaining(ulong nowNs)
        => DeadlineNs == 0 ? null : DeadlineNs <= nowNs ? TimeSpan.Zero : TimeSpan.FromTicks((long)((DeadlineNs - nowNs) / 100));
}
