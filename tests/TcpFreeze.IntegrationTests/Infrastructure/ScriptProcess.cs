using System.Diagnostics;
using System.Text;

namespace TcpFreeze.Tests.Infrastructure;

/// <summary>
/// A python3 script running inside a network namespace of the test's own, started
/// with nsenter (which execs python in place, so <see cref="Pid"/> is python's PID).
/// The script talks to the test over stdout lines and stdin. Dispose kills the
/// process and the descendants it forked (by PID) and waits for them.
/// </summary>
public sealed class ScriptProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _errors = new();

    private ScriptProcess(Process process) => _process = process;

    public int Pid => _process.Id;

    public static ScriptProcess Start(string namespaceName, string script, params string[] arguments)
    {
        var info = new ProcessStartInfo("nsenter")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add($"--net=/run/netns/{namespaceName}");
        info.ArgumentList.Add("python3");
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(script);
        foreach (string argument in arguments)
            info.ArgumentList.Add(argument);
        Process process = Process.Start(info) ?? throw new InvalidOperationException("could not start nsenter python3");
        var result = new ScriptProcess(process);
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
                lock (result._errors)
                    result._errors.AppendLine(e.Data);
        };
        process.BeginErrorReadLine();
        return result;
    }

    /// <summary>Reads the script's next stdout line, waiting at most <paramref name="timeout"/>.</summary>
    public string ReadLine(TimeSpan timeout)
    {
        Task<string?> line = _process.StandardOutput.ReadLineAsync();
        if (!line.Wait(timeout))
            throw new TimeoutException($"the script printed no line within {timeout}; stderr: {Errors}");
        return line.Result ?? throw new InvalidOperationException($"the script exited (code {ExitCodeOrNull}); stderr: {Errors}");
    }

    /// <summary>Reads lines until one starts with <paramref name="prefix"/>; returns the rest of it.</summary>
    public string Expect(string prefix, TimeSpan timeout)
    {
        string line = ReadLine(timeout);
        Assert.True(line.StartsWith(prefix, StringComparison.Ordinal), $"expected '{prefix}...' from the script, got '{line}'; stderr: {Errors}");
        return line[prefix.Length..].Trim();
    }

    public string Errors
    {
        get
        {
            lock (_errors)
                return _errors.ToString().Trim();
        }
    }

    private int? ExitCodeOrNull => _process.HasExited ? _process.ExitCode : null;

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
                _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
        catch (InvalidOperationException)
        {
            // exited on its own
        }
        _process.Dispose();
    }
}
