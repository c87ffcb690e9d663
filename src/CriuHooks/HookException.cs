
namespace TcpFreeze.CriuHooks;

/// <summary>A hook step could not do its work; the message says what and why.</summary>
public sealed class HookException(string message) : Exception(message);
