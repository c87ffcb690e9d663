// The executable CRIU runs as an action script (no arguments; CRTOOLS_* in the environment).
return TcpFreeze.CriuHooks.HookProgram.Run(args);
