using System.Diagnostics;

namespace TcpFreeze.Benchmarks;

/// <summary>Runs a command line tool to completion and fails loudly, with its stderr, if it fails.</summary>
internal static class Commands
{
    /// <summary>Long enough for the slowest measured operation (CRIU-style unlock of 1,500 connections, ~1.5 min).</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(15);

    /// <summary>Runs <paramref name="file"/> with <paramref name="arguments"/>, feeding <paramref name="input"/> to its stdin; returns its stdout.</summary>
    public static string Run(string file, IEnumerable<string> arguments, string? input = null, TimeSpan? timeout = null)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardInput = input is not null,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in arguments)
            info.ArgumentList.Add(a);
        string commandLine = $"{file} {string.Join(' ', info.ArgumentList)}";

        using Process process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {commandLine}");
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (input is not null)
        {
            try
            {
                process.StandardInput.Write(input);
                process.StandardInput.Close();
            }
            catch (IOException)
            {
                // The tool exited before reading all of its input: its exit code and stderr say why.
            }
        }

        if (!process.WaitForExit(timeout ?? DefaultTimeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            throw new TimeoutException($"{Shorten(commandLine)}: still running after {timeout ?? DefaultTimeout}; killed");
        }
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{Shorten(commandLine)}: exit code {process.ExitCode}: {stderr.Result.Trim()}");
        return stdout.Result;
    }

    private static string Shorten(string text) => text.Length <= 300 ? text : text[..300] + "...";
}
