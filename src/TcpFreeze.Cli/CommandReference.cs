using System.CommandLine;
using System.Globalization;
using System.Reflection;
using System.Text;

namespace TcpFreeze.Cli;

/// <summary>
/// The bash completion script and the man page, written from the command tree itself (names, aliases, value names,
/// descriptions), so neither can list a command or an option the parser does not have. System.CommandLine 2.0 has no
/// generator for either (only the <c>[suggest]</c> directive, which needs its dotnet-suggest tool at every TAB).
/// </summary>
internal static class CommandReference
{
    /// <summary>
    /// The names a user types for an option: its long names, and single-letter short ones (<c>-j</c>). The DOS-style
    /// and punctuation aliases of the help option (<c>/h</c>, <c>/?</c>, <c>-?</c>) are left out: a shell globs them.
    /// </summary>
    public static IEnumerable<string> TypedNames(Option option)
        => new[] { option.Name }.Concat(option.Aliases)
            .Where(n => n.StartsWith("--", StringComparison.Ordinal) || (n.Length == 2 && n[0] == '-' && char.IsAsciiLetter(n[1])))
            .Distinct()
            .OrderBy(n => n.StartsWith("--", StringComparison.Ordinal)).ThenBy(n => n, StringComparer.Ordinal);

    /// <summary>The commands a user can type: the visible subcommands of the root.</summary>
    public static IEnumerable<Command> Commands(Command root) => root.Subcommands.Where(c => !c.Hidden);

    /// <summary>What a command accepts: its own visible options and the recursive ones of the root (help).</summary>
    public static IEnumerable<Option> OptionsOf(Command command, Command root)
        => command.Options.Concat(command == root ? [] : root.Options.Where(o => o.Recursive)).Where(o => !o.Hidden).Distinct();

    // ------------------------------------------------------------------ bash

    /// <summary>A bash completion script: <c>source</c> it, or install it as bash-completion's <c>completions/tcpfreeze</c>.</summary>
    public static string Bash(Command root)
    {
        var text = new StringBuilder();
        text.Append("# bash completion for tcpfreeze. Written by 'tcpfreeze completion bash' from the command definitions;\n")
            .Append("# scripts/install.sh installs it as PREFIX/share/bash-completion/completions/tcpfreeze.\n")
            .Append("_tcpfreeze()\n{\n")
            .Append("    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} command= i\n")
            .Append("    for ((i = 1; i < COMP_CWORD; i++)); do\n")
            .Append("        case ${COMP_WORDS[i]} in\n")
            .Append("            ").Append(string.Join('|', Commands(root).Select(c => c.Name).Append("help"))).Append(") command=${COMP_WORDS[i]}; break ;;\n")
            .Append("        esac\n")
            .Append("    done\n");

        // A value after an option that takes one: its words, folders or files, or nothing to offer (numbers, addresses).
        // Keyed by command and option: one option name may take other values in another command (list's and stats' --format).
        text.Append("    case \"$command $prev\" in\n");
        var valued = new[] { root }.Concat(Commands(root))
            .SelectMany(c => OptionsOf(c, root).Where(TakesValue).SelectMany(o => TypedNames(o).Select(n => (Word: $"{(c == root ? "" : c.Name)} {n}", Completion: ValueCompletion(o)))))
            .GroupBy(v => v.Completion, v => v.Word).OrderBy(g => g.Key, StringComparer.Ordinal);
        foreach (IGrouping<string, string> group in valued)
            text.Append("        ").Append(string.Join('|', group.Distinct().Select(w => $"'{w}'")))
                .Append(") ").Append(group.Key).Append(" return ;;\n");
        text.Append("    esac\n");

        text.Append("    case $command in\n");
        foreach (Command command in new[] { root }.Concat(Commands(root)))
        {
            IEnumerable<string> words = OptionsOf(command, root).SelectMany(TypedNames);
            string pattern = command == root ? "''" : command.Name;
            if (command == root)
                text.Append("        '') if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W '").Append(string.Join(' ', words))
                    .Append("' -- \"$cur\")); else COMPREPLY=($(compgen -W '").Append(string.Join(' ', Commands(root).Select(c => c.Name).Append("help")))
                    .Append("' -- \"$cur\")); fi ;;\n");
            else
                text.Append("        ").Append(pattern).Append(") COMPREPLY=($(compgen -W '").Append(string.Join(' ', words.Concat(FixedArguments(command))))
                    .Append("' -- \"$cur\")) ;;\n");
        }
        // 'tcpfreeze help COMMAND' is 'tcpfreeze COMMAND --help'.
        text.Append("        help) COMPREPLY=($(compgen -W '").Append(string.Join(' ', Commands(root).Select(c => c.Name))).Append("' -- \"$cur\")) ;;\n");
        text.Append("    esac\n")
            .Append("}\n")
            .Append("complete -F _tcpfreeze tcpfreeze\n");
        return text.ToString();
    }

    /// <summary>Whether the option takes a value: a bool option (<c>--replace</c>) is a flag, though its arity allows "true".</summary>
    private static bool TakesValue(Option option) => option.Arity.MaximumNumberOfValues > 0 && option.ValueType != typeof(bool);

    /// <summary>The words of a word-valued option's value name (<c>auto|native|generic</c>), else none.</summary>
    private static string[] Choices(string? helpName)
        => helpName is { Length: > 0 } && helpName.Split('|') is { Length: > 0 } words && words.All(w => w.Length > 0 && w.All(ch => char.IsAsciiLetterLower(ch)))
            ? words : [];

    private static string ValueCompletion(Option option) => option.HelpName switch
    {
        string name when Choices(name).Length > 0 => $"COMPREPLY=($(compgen -W '{string.Join(' ', Choices(name))}' -- \"$cur\"));",
        "DIR" => "COMPREPLY=($(compgen -d -- \"$cur\"));",
        "FILE" or "PATH" or "NAME|PATH" => "COMPREPLY=($(compgen -f -- \"$cur\"));",
        _ => "COMPREPLY=();",
    };

    /// <summary>Arguments that are words to choose from (completion's SHELL), offered after the command.</summary>
    private static IEnumerable<string> FixedArguments(Command command)
        => command.Arguments.Where(a => !a.Hidden).SelectMany(a => Choices(a.HelpName));

    // ------------------------------------------------------------------ man page

    /// <summary>The tcpfreeze(8) man page in roff (man macros); no date, so the same tree always gives the same page.</summary>
    public static string ManPage(Command root)
    {
        string version = typeof(CommandReference).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "";
        var page = new StringBuilder();
        page.Append(".\\\" Written by 'tcpfreeze manpage' from the command definitions; scripts/install.sh installs it.\n")
            .Append(".TH TCPFREEZE 8 \"\" \"tcpfreeze ").Append(Roff(version)).Append("\" \"System Administration\"\n")
            .Append(".SH NAME\n")
            .Append("tcpfreeze \\- ").Append(Roff(LowerFirst(CliSyntax.Summary.TrimEnd('.')))).Append('\n')
            .Append(".SH SYNOPSIS\n");
        foreach (Command command in Commands(root))
            page.Append(".B tcpfreeze ").Append(command.Name).Append('\n').Append(Roff(Synopsis(command, root))).Append("\n.br\n");
        page.Append(".SH DESCRIPTION\n").Append(Roff(root.Description ?? "")).Append('\n')
            .Append(".SH OPTIONS\n");
        foreach (Option option in OptionsOf(root, root))
            Item(page, option);
        page.Append(".SH COMMANDS\n");
        foreach (Command command in Commands(root))
        {
            page.Append(".SS ").Append(command.Name).Append('\n').Append(Roff(command.Description ?? "")).Append('\n');
            foreach (Argument argument in command.Arguments.Where(a => !a.Hidden))
                page.Append(".TP\n.I ").Append(Roff(ArgumentName(argument))).Append('\n').Append(Roff(argument.Description ?? "")).Append('\n');
            foreach (Option option in OptionsOf(command, root))
                Item(page, option);
        }
        page.Append(".SH EXIT STATUS\n")
            .Append(".TP\n.B ").Append(ExitCodes.Success.ToString(CultureInfo.InvariantCulture)).Append("\ndone\n")
            .Append(".TP\n.B ").Append(ExitCodes.Failure.ToString(CultureInfo.InvariantCulture)).Append("\nthe operation failed: one line on standard error, tcpfreeze: MESSAGE, that says what to do\n")
            .Append(".TP\n.B ").Append(ExitCodes.Usage.ToString(CultureInfo.InvariantCulture)).Append("\nthe command line is wrong (unknown command or option, malformed value, options that contradict each other)\n")
            .Append(".SH SEE ALSO\n")
            .Append(".BR criu (8),\n.BR ip-netns (8),\n.BR bpftool (8)\n");
        return page.ToString();
    }

    private static void Item(StringBuilder page, Option option)
    {
        page.Append(".TP\n");
        string names = string.Join(", ", TypedNames(option).Select(n => $"\\fB{Roff(n)}\\fR"));
        page.Append(names);
        if (TakesValue(option))
            page.Append(" \\fI").Append(Roff(option.HelpName ?? "VALUE")).Append("\\fR");
        page.Append('\n').Append(Roff(option.Description ?? "")).Append('\n');
    }

    private static string Synopsis(Command command, Command root)
    {
        var parts = new List<string>();
        foreach (Argument argument in command.Arguments.Where(a => !a.Hidden))
            parts.Add(argument.Arity.MinimumNumberOfValues == 0 ? $"[{ArgumentName(argument)}]" : ArgumentName(argument));
        if (OptionsOf(command, root).Any())
            parts.Add("[OPTIONS]");
        return string.Join(' ', parts);
    }

    private static string ArgumentName(Argument argument) => argument.HelpName ?? argument.Name;

    private static string LowerFirst(string text) => text.Length > 1 && char.IsUpper(text[0]) && char.IsLower(text[1]) ? char.ToLowerInvariant(text[0]) + text[1..] : text;

    /// <summary>Text for roff: backslashes escaped, hyphens as minus signs, no line that starts a request.</summary>
    internal static string Roff(string text)
    {
        string escaped = text.Replace("\\", "\\e", StringComparison.Ordinal).Replace("-", "\\-", StringComparison.Ordinal);
        return string.Join('\n', escaped.Split('\n').Select(line => line.StartsWith('.') || line.StartsWith('\'') ? "\\&" + line : line));
    }
}
