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

    /// <summary>The value for a key frozen anew; a key frozen already keeps its drop count.</summary>
    public static FreezeEntry Renewed(FreezeEntry? old, ulong deadlineNs)
        => new() { DeadlineNs = deadlineNs, Dropped = old?.Dropped ?? 0 };

    /// <summary>How long the lease still runs: null for no lease, zero once it has ended.</summary>
    public readonly TimeSpan? Remaining(ulong nowNs)
        => DeadlineNs == 0 ? null : DeadlineNs <= nowNs ? TimeSpan.Zero : TimeSpan.FromTicks((long)((DeadlineNs - nowNs) / 100));
}
