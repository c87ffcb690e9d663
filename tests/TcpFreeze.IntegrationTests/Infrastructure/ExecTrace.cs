using System.Text;

namespace TcpFreeze.Tests.Infrastructure;

/// <summary>One execve(2) that strace saw: who called it, the path, every argv element, and how it ended.</summary>
public sealed record ExecCall(int Pid, string Path, IReadOnlyList<string> Arguments, bool Succeeded, string Line)
{
    public override string ToString() => Line;
}

/// <summary>What a program did under <c>strace -f -e trace=execve</c>: its exit, its output, and every execve of it and its descendants.</summary>
public sealed record TracedRun(int ExitCode, string Output, string Error, IReadOnlyList<ExecCall> Execs, string Description)
{
    /// <summary>The execve that started the traced program itself (strace's own).</summary>
    public ExecCall Started => Execs.Count > 0 ? Execs[0] : throw new InvalidOperationException($"strace saw no execve at all: {Description}");

    /// <summary>Every execve after the first: what the program ran.</summary>
    public IEnumerable<ExecCall> Ran => Execs.Skip(1);

    public override string ToString() => $"{Description} -> exit {ExitCode}; stdout: {Output.Trim()}; stderr: {Error.Trim()}; execs:\n  {string.Join("\n  ", Execs)}";
}

/// <summary>
/// Runs a program under strace, following every child and thread, recording only
/// execve (attempts that failed too: a shell looked for on PATH counts).
/// </summary>
public static class ExecTrace
{
    /// <summary>
    /// Runs <paramref name="program"/> with <paramref name="arguments"/> under strace.
    /// <paramref name="launcher"/> (e.g. nsenter --net=...) runs strace itself and is not traced.
    /// </summary>
    public static TracedRun Run(string program, IReadOnlyList<string> arguments, IDictionary<string, string>? environment = null,
        IReadOnlyList<string>? launcher = null, TimeSpan? timeout = null)
    {
        string traceFile = Path.Combine(Path.GetTempPath(), $"tcpfreeze-exec-{Environment.ProcessId}-{Guid.NewGuid():N}.strace");
        try
        {
            string[] strace = ["strace", "-f", "-qq", "-s", "65536", "-e", "trace=execve", "-e", "signal=none", "-o", traceFile, "--", program, .. arguments];
            string[] command = launcher is { Count: > 0 } ? [.. launcher, .. strace] : strace;
            (int code, string output, string error) = Infrastructure.Run.Capture(command[0], command[1..], environment, timeout ?? TimeSpan.FromSeconds(60));
            string description = $"{program} {string.Join(' ', arguments.Select(a => $"'{a}'"))}";
            return new TracedRun(code, output, error, Parse(File.ReadAllLines(traceFile)), description);
        }
        finally
        {
            File.Delete(traceFile);
        }
    }

    /// <summary>Parses strace's execve lines: <c>PID execve("PATH", ["ARG", ...], 0x... /* N vars */) = RESULT</c>.</summary>
    public static List<ExecCall> Parse(IEnumerable<string> lines)
    {
        var calls = new List<ExecCall>();
        foreach (string line in lines)
        {
            int space = line.IndexOf(' ');
            if (space <= 0 || !int.TryParse(line.AsSpan(0, space), out int pid))
                continue;
            int at = line.IndexOf("execve(", space, StringComparison.Ordinal);
            if (at < 0)
                continue; // "<... execve resumed>" and the like carry no arguments
            int i = at + "execve(".Length;
            string path = ReadString(line, ref i);
            Expect(line, ref i, ", [");
            var argv = new List<string>();
            while (i < line.Length && line[i] != ']')
            {
                if (line.AsSpan(i).StartsWith("..."))
                    throw new FormatException($"strace cut the argument list: {line}");
                argv.Add(ReadString(line, ref i));
                if (line.AsSpan(i).StartsWith(", "))
                    i += 2;
            }
            bool succeeded = line.TrimEnd().EndsWith("= 0", StringComparison.Ordinal);
            calls.Add(new ExecCall(pid, path, argv, succeeded, line));
        }
        return calls;
    }

    private static void Expect(string line, ref int i, string text)
    {
        if (!line.AsSpan(i).StartsWith(text))
            throw new FormatException($"expected '{text}' at {i} in strace's line: {line}");
        i += text.Length;
    }

    /// <summary>Reads a C string literal as strace prints it (with -s large enough that nothing is cut).</summary>
    private static string ReadString(string line, ref int i)
    {
        Expect(line, ref i, "\"");
        var bytes = new List<byte>();
        while (true)
        {
            if (i >= line.Length)
                throw new FormatException($"unterminated string in strace's line: {line}");
            char c = line[i++];
            if (c == '"')
                break;
            if (c != '\\')
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(c.ToString()));
                continue;
            }
            char e = line[i++];
            switch (e)
            {
                case 'n': bytes.Add((byte)'\n'); break;
                case 't': bytes.Add((byte)'\t'); break;
                case 'r': bytes.Add((byte)'\r'); break;
                case 'v': bytes.Add((byte)'\v'); break;
                case 'f': bytes.Add((byte)'\f'); break;
                case 'x':
                    bytes.Add(Convert.ToByte(line.Substring(i, 2), 16));
                    i += 2;
                    break;
                case >= '0' and <= '7':
                    int value = e - '0';
                    for (int digits = 1; digits < 3 && i < line.Length && line[i] is >= '0' and <= '7'; digits++)
                        value = value * 8 + (line[i++] - '0');
                    bytes.Add((byte)value);
                    break;
                default: bytes.Add((byte)e); break; // \" and \\
            }
        }
        if (line.AsSpan(i).StartsWith("..."))
            throw new FormatException($"strace cut a string: {line}");
        return Encoding.UTF8.GetString(bytes.ToArray());
    }
}
