namespace TcpFreeze;

/// <summary>What TcpFreeze has left in a namespace (see <see cref="TcpFreezer.Inspect"/>).</summary>
/// <param name="PinDirectory">The namespace's pin directory.</param>
/// <param name="PinDirectoryExists">Whether that directory exists.</param>
/// <param name="Pins">TcpFreeze's pins found in it.</param>
/// <param name="MissingPins">TcpFreeze's pins missing from it (empty when the directory does not exist).</param>
/// <param name="OtherEntries">Files in it that TcpFreeze did not create; detach leaves them, and the directory, in place.</param>
/// <param name="Programs">TcpFreeze's programs attached to the namespace's interfaces.</param>
/// <remarks>Thread safety: immutable; safe to share between threads.</remarks>
public sealed record AttachmentState(string PinDirectory, bool PinDirectoryExists, IReadOnlyList<string> Pins, IReadOnlyList<string> MissingPins,
    IReadOnlyList<string> OtherEntries, IReadOnlyList<AttachedProgram> Programs)
{
    /// <summary>Whether nothing of TcpFreeze's is there: no pin directory and no attached program.</summary>
    public bool IsEmpty => !PinDirectoryExists && Programs.Count == 0;

    /// <summary>Whether any TcpFreeze program is attached in the namespace.</summary>
    public bool ProgramsAttached => Programs.Count > 0;

    /// <summary>The interfaces with a TcpFreeze program attached, in interface order.</summary>
    public IReadOnlyList<string> AttachedInterfaces => Programs.Select(p => p.Interface).Distinct().ToList();

    /// <summary>
    /// Whether something is left that can hold a frozen set: a map pin, a program pin
    /// (a pinned program keeps its maps) or an attached program.
    /// </summary>
    public bool HasFrozenSetSource => Programs.Count > 0 || Pins.Count > 0;
}
