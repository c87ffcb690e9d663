namespace TcpFreeze;

/// <summary>
/// Words a <see cref="TcpFreezeException"/>'s <see cref="TcpFreezeException.Remedy"/> as
/// the tcpfreeze command to run. The library names the step; the command line and the
/// CRIU hook (whose users fix leftovers with the command line) say it this way, so both
/// compile this one file in (internal to each: neither front end depends on the other for it).
/// </summary>
internal static class CommandRemedies
{
    /// <summary>The exception's message followed by the command that fixes the state, if any.</summary>
    public static string Describe(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return exception is TcpFreezeException e ? exception.Message + Suffix(e.Remedy) : exception.Message;
    }

    /// <summary>The words that follow a message for <paramref name="remedy"/>.</summary>
    public static string Suffix(TcpFreezeRemedy remedy) => remedy switch
    {
        TcpFreezeRemedy.Attach => "; run 'tcpfreeze attach' first",
        TcpFreezeRemedy.Rebuild => "; run 'tcpfreeze detach' and 'tcpfreeze attach' to rebuild the state",
        TcpFreezeRemedy.DetachSafely => ", so 'tcpfreeze detach' removes it safely and 'tcpfreeze attach' starts afresh",
        TcpFreezeRemedy.DetachAll => "; run 'tcpfreeze detach' to remove them all, which thaws everything",
        TcpFreezeRemedy.RemoveIncompatible => ". Run 'tcpfreeze detach' to remove it",
        _ => "",
    };
}
