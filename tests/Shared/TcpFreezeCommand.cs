using System.Text.Json;

namespace TcpFreeze.Tests;

/// <summary>The built tcpfreeze command, run as a process with 'dotnet', exactly as scripts run it.</summary>
public static class TcpFreezeCommand
{
    private static readonly string Assembly = Path.Combine(AppContext.BaseDirectory, "TcpFreeze.Cli.dll");

    public static CliResult Run(params string[] arguments)
    {
        (int code, string output, string error) = Infrastructure.Run.Capture("dotnet", [Assembly, .. arguments], null, TimeSpan.FromSeconds(60));
        return new CliResult(code, output, error, arguments);
    }
}

public sealed record CliResult(int ExitCode, string Output, string Error, string[] Arguments)
{
    public override string ToString() => $"tcpfreeze {string.Join(' ', Arguments)} -> exit {ExitCode}; stdout: {Output.Trim()}; stderr: {Error.Trim()}";

    public CliResult Succeeds()
    {
        Assert.True(ExitCode == 0, ToString());
        Assert.True(Error.Length == 0, ToString());
        return this;
    }

    /// <summary>Fails with <paramref name="code"/> and exactly one "tcpfreeze: ..." line on stderr, no stack trace.</summary>
    public CliResult FailsWith(int code, string messagePart)
    {
        Assert.True(ExitCode == code, ToString());
        string[] lines = Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one stderr line: {this}");
        Assert.StartsWith("tcpfreeze: ", lines[0]);
        Assert.Contains(messagePart, lines[0]);
        Assert.True(Output.Length == 0, ToString());
        return this;
    }

    public JsonElement Json() => JsonDocument.Parse(Output).RootElement;
}
