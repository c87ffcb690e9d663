namespace TcpFreeze;

/// <summary>
/// What gets the user out of the state that made an operation fail. The library names
/// the step; front ends (the CLI, the CRIU hook) say how to take it in their own terms.
/// </summary>
public enum TcpFreezeRemedy
{
    /// <summary>No particular step (the message says what is wrong).</summary>
    None,

    /// <summary>Nothing is attached: attach first.</summary>
    Attach,

    /// <summary>A pin is missing: detach and attach again to rebuild the state.</summary>
    Rebuild,

    /// <summary>What is left holds nothing that can be frozen: detach removes it safely, attach starts afresh.</summary>
    DetachSafely,

    /// <summary>Several leftovers disagree: detach removes them all, which thaws everything.</summary>
    DetachAll,

    /// <summary>A map was made by an incompatible version: detach removes it.</summary>
    RemoveIncompatible,
}
