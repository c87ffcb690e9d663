using System.Diagnostics;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Migration;

/// <summary>
/// The hook's resident agent for the <c>tcpfreeze-agent</c> method: the engine (<c>tcpfreeze-criu-hook-engine
/// --agent SOCKET</c>, beside the hook's front end) in the network namespace where the run's CRIU runs (an agent
/// serves the CRIU runs of its own namespaces), started before the run's dump and stopped (SIGTERM) after it.
/// </summary>
internal sealed class BenchAgent : IDisposable
{
    private static readonly TimeSpan StartBound = TimeSpan.FromSeconds(10);
    private Process? _process;
    private string? _folder;

    /// <summary>Starts the agent in network namespace <paramref name="netns"/> (stopping one from an earlier run) and returns its socket.</summary>
    public string StartIn(string netns, string hook)
    {
        Dispose();
        string engine = Path.Combine(Path.GetDirectoryName(hook) ?? ".", "tcpfreeze-criu-hook-engine");
        if (!File.Exists(engine))
            throw new InvalidOperationException($"the agent method needs {engine} beside the hook {hook} (publish src/CriuHooks.Hook)");
        _folder = Directory.CreateTempSubdirectory("tcpfreeze-bench-agent-").FullName;
        string socket = Path.Combine(_folder, "agent.sock");
        var info = new ProcessStartInfo("nsenter") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add($"--net=/run/netns/{netns}");
        info.ArgumentList.Add(engine);
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
