
namespace TcpFreeze.CriuHooks;

/// <summary>Handles one CRIU action; returns the exit code (0 lets CRIU go on).</summary>
public delegate int CriuActionHandler(CriuEnvironment environment, HookContext context);
