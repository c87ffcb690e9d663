namespace TcpFreeze;

/// <summary>
/// The named lease values. A freeze always ends by itself unless its caller asked for
/// <see cref="Forever"/> by name: an embedder that crashes between freeze and thaw leaves
/// nothing frozen for longer than its lease.
/// </summary>
/// <remarks>Thread safety: constants; safe on any thread.</remarks>
public static class Lease
{
    /// <summary>
    /// The lease every front end uses when none is given (the library's
    /// <see cref="FreezerOptions.DefaultLease"/>, the CLI's <c>freeze</c>, the CRIU hook):
    /// 120 s, long enough for a dump, a copy of the images and a restore.
    /// </summary>
    public static readonly TimeSpan Default = TimeSpan.FromSeconds(120);

    /// <summary>
    /// No lease: frozen until thawed, detached or the machine reboots. Equal to
    /// <see cref="Timeout.InfiniteTimeSpan"/>, so code that says that means the same.
    /// </summary>
    public static readonly TimeSpan Forever = Timeout.InfiniteTimeSpan;

    /// <summary>Whether <paramref name="lease"/> is a lease a freeze accepts: positive, or <see cref="Forever"/>.</summary>
    public static bool IsValid(TimeSpan lease) => lease > TimeSpan.Zero || lease == Forever;
}
