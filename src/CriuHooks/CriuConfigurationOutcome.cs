using System.Text;

namespace TcpFreeze.CriuHooks;

/// <summary>What <see cref="CriuConfiguration.Write"/> or <see cref="CriuConfiguration.Remove"/> did to the file.</summary>
public enum CriuConfigurationOutcome
{
    /// <summary>The file did not exist; it was created with the block.</summary>
    Created,

    /// <summary>The block was appended to the user's file.</summary>
    Added,

    /// <summary>An older block was replaced in place.</summary>
    Replaced,

    /// <summary>The block was already there, exactly; the file was not touched.</summary>
    Unchanged,

    /// <summary>The block was removed; the rest of the file is byte for byte what it was.</summary>
    Removed,

    /// <summary>There was no block (or no file); nothing was touched.</summary>
    NothingToRemove,
}
