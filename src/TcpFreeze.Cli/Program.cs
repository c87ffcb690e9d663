using System.CommandLine;
using System.CommandLine.Invocation;

namespace TcpFreeze.Cli;

/// <summary>Exit codes of the tcpfreeze command; scripts rely on them.</summary>
internal static class ExitCodes
{
    /// <summary>Done.</summary>
    public const int Success = 0;

    /// <summary>The operation failed (nothing attached, the kernel refused, no such process...).</summary>
    public const int Failure = 1;

    /// <summary>The command line is wrong (unknown command, malformed endpoint, bad combination).</summary>
    public const int Usage = 2;
}

internal static class Program
{
    public static int Main(string[] args) => Cli.Run(args, Console.Out, Console.Error);
}

/// <summary>Parses, runs and turns every failure into one "tcpfreeze: MESSAGE" line and an exit code.</summary>
internal static class Cli
{
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        Command root = new CliSyntax(new CliOperations(output, error), error).Build();
        // `tcpfreeze help [COMMAND]` is `tcpfreeze [COMMAND] --help`, as git and ip read it.
        if (args is ["help", .. var about])
            args = [.. about, "--help"];
        // No @response-file expansion: an argument is always taken literally.
        ParseResult parse = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (parse.Action is ParseErrorAction)
        {
            // An unknown word explains a missing command better than "Required command was not provided".
            string commands = string.Join(", ", root.Subcommands.Select(c => c.Name));
            string message = args.Length == 0 ? $"no command given; use one of {commands} (see 'tcpfreeze --help')"
                : parse.UnmatchedTokens.Count > 0 ? $"unrecognized command or argument '{parse.UnmatchedTokens[0]}'; see 'tcpfreeze --help'"
                : parse.Errors[0].Message;
            return Fail(error, ExitCodes.Usage, message);
        }
        return parse.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
    }

    /// <summary>Runs an action; known failures become one line on stderr, never a stack trace.</summary>
    public static int Guard(TextWriter error, Func<int> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            return Fail(error, ExitCodes.Usage, e.Message);
        }
        catch (Exception e) when (e is TcpFreezeException or CriuHooks.CriuConfigurationException or IOException or UnauthorizedAccessException)
        {
            return Fail(error, ExitCodes.Failure, CommandRemedies.Describe(e));
        }
        catch (Exception e)
        {
            // A bug of ours: still one line, but say what kind it was so it can be reported.
            return Fail(error, ExitCodes.Failure, $"unexpected {e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>Something the user should know while the command still succeeds; one line on stderr.</summary>
    public static void Warn(TextWriter error, string message) => error.WriteLine($"tcpfreeze: warning: {OneLine(message)}");

    private static int Fail(TextWriter error, int code, string message)
    {
        error.WriteLine($"tcpfreeze: {Lowercase(OneLine(message))}");
        return code;
    }

    /// <summary>
    /// Every line reads "tcpfreeze: lower-case words", also when the text is the runtime's or
    /// System.CommandLine's sentence ("Access to the path ... is denied."): its first word is
    /// lower-cased. Names and acronyms (PID, CRTOOLS_INIT_PID, EPERM) keep their case.
    /// </summary>
    internal static string Lowercase(string message)
    {
        if (message.Length < 2 || !char.IsUpper(message[0]) || !char.IsLower(message[1]))
            return message;
        return char.ToLowerInvariant(message[0]) + message[1..];
    }

    /// <summary>
    /// The first line of a message (a verifier log can follow it) with any trailing
    /// "the verifier log follows:" cut, so stderr always gets exactly one line.
    /// </summary>
    internal static string OneLine(string message)
    {
        string first = message.Split('\n', 2)[0].TrimEnd('\r', ' ', ':');
        const string LogMarker = "; the verifier log follows";
        return first.EndsWith(LogMarker, StringComparison.Ordinal) ? first[..^LogMarker.Length] : first;
    }
}
