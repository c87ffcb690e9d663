using System.Diagnostics;

namespace TcpFreeze.Tests.Infrastructure;

/// <summary>Runs a program (never through a shell) and returns its output, failing loudly.</summary>
public static class Run
{
    public static string Checked(string program, params string[] arguments)
    {
        (int code, string output, string error) = Capture(program, arguments);
        if (code != 0)
            throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} exited {code}: {error.Trim()} {output.Trim()}");
        return output;
    }

    public static (int ExitCode, string Output, string Error) Capture(string program, params string[] arguments)
        => Capture(program, arguments, null, TimeSpan.FromSeconds(60));

    /// <summary>Runs <paramref name="program"/>, optionally writing <paramref name="standardInput"/> to it; kills it after <paramref name="timeout"/>.</summary>
    public static (int ExitCode, string Output, string Error) Capture(string program, IEnumerable<string> arguments, IDictionary<string, string>? environment, TimeSpan timeout,
        string? standardInput = null)
    {
        var info = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = standardInput is not null, UseShellExecute = false,
        };
        foreach (string argument in arguments)
            info.ArgumentList.Add(argument);
        if (environment is not null)
            foreach ((string key, string value) in environment)
                info.Environment[key] = value;
        using Process process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {program}");
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> error = process.StandardError.ReadToEndAsync();
        if (standardInput is not null)
        {
            process.StandardInput.Write(standardInput);
            process.StandardInput.Close();
        }
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} {string.Join(' ', arguments)} did not finish within {timeout}");
        }
        process.WaitForExit();
        return (process.ExitCode, output.Result, error.Result);
    }
}
