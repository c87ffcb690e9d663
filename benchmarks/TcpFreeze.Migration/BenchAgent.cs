using System.Diagnostics;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Migration;

/// <summary>
/// The hook's resident agent for the <c>tcpfreeze-agent</c> method: one engine process (<c>tcpfreeze-criu-hook-engine
/// --agent SOCKET</c>, beside the hook's front end) for the whole benchmark, as a system's agent serves every
/// migration, started at the first run that needs it and stopped (SIGTERM) at the end.
/// </summary>
internal sealed class BenchAgent : IDisposable
{
    private static readonly TimeSpan StartBound = TimeSpan.FromSeconds(10);
    private Process? _process;
    private string? _folder;

    /// <summary>The agent's socket, starting the agent first if it does not run yet.</summary>
    public string SocketFor(string hook)
    {
        if (_process is { HasExited: false } && _folder is not null)
            return Path.Combine(_folder, "agent.sock");
        Dispose();
        string engine = Path.Combine(Path.GetDirectoryName(hook) ?? ".", "tcpfreeze-criu-hook-engine");
        if (!File.Exists(engine))
            throw new InvalidOperationException($"the agent method needs {engine} beside the hook {hook} (publish src/CriuHooks.Hook)");
        _folder = Directory.CreateTempSubdirectory("tcpfreeze-bench-agent-").FullName;
        string socket = Path.Combine(_folder, "agent.sock");
        var info = new ProcessStartInfo(engine) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add("--agent");
        info.ArgumentList.Add(socket);
        _process = Process.Start(info) ?? throw new InvalidOperationException($"{engine} did not start");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var clock = Stopwatch.StartNew();
        while (!File.Exists(socket))
        {
            if (_process.HasExited || clock.Elapsed > StartBound)
                throw new InvalidOperationException($"the agent did not open {socket} within {StartBound.TotalSeconds} s (exit {(_process.HasExited ? _process.ExitCode : -1)})");
            Thread.Sleep(10);
        }
        return socket;
    }

    public void Dispose()
    {
        if (_process is { } process)
        {
            if (!process.HasExited)
            {
                Run.Capture("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
                if (!process.WaitForExit(TimeSpan.FromSeconds(10)))
                    process.Kill();
            }
            process.Dispose();
            _process = null;
        }
        if (_folder is not null && Directory.Exists(_folder))
            Directory.Delete(_folder, recursive: true);
        _folder = null;
    }
}
