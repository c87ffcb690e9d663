using System.Text;

namespace TcpFreeze.CriuHooks;

/// <summary>The result of a change: the file, what happened, and warnings for the user.</summary>
/// <param name="FilePath">The configuration file.</param>
/// <param name="Outcome">What happened to it.</param>
/// <param name="Warnings">Things that still make the setup wrong or fragile (the hook would run twice, ...); each one line.</param>
public sealed record CriuConfigurationChange(string FilePath, CriuConfigurationOutcome Outcome, IReadOnlyList<string> Warnings)
{
    /// <summary>The block was all the file held, so <see cref="CriuConfiguration.Remove"/> deleted the file.</summary>
    public bool FileDeleted { get; init; }
}
