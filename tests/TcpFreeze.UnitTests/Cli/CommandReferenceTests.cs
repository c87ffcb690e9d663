using System.Text.RegularExpressions;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// The bash completion script and the man page list exactly the real commands and options: the ones the parser's own
/// --help shows (System.CommandLine's rendering, not our generator), command by command. And the script completes in a
/// real bash, not only reads right.
/// </summary>
public sealed partial class CommandReferenceTests
{
    /// <summary>The commands of 'tcpfreeze --help', in order.</summary>
    private static List<string> RealCommands()
    {
        string help = TcpFreezeCommand.Run("--help").Succeeds().Output;
        string section = help[(help.IndexOf("\nCommands:\n", StringComparison.Ordinal) + "\nCommands:\n".Length)..];
        return [.. section.Split('\n').Select(l => CommandLine().Match(l)).Where(m => m.Success).Select(m => m.Groups[1].Value)];
    }

    /// <summary>
    /// The options a command's --help lists, by the names one types (long names and one-letter ones: '-?' is left out,
    /// as a shell would glob it).
    /// </summary>
    private static SortedSet<string> RealOptions(params string[] command)
    {
        string help = TcpFreezeCommand.Run([.. command, "--help"]).Succeeds().Output;
        var names = new SortedSet<string>(StringComparer.Ordinal);
        foreach (Match line in OptionLine().Matches(help))
            foreach (string name in line.Groups[1].Value.Split(", "))
                if (name != "-?")
                    names.Add(name.Split(' ')[0]);
        return names;
    }

    private static string Bash() => TcpFreezeCommand.Run("completion", "bash").Succeeds().Output;

    [Fact]
    public void The_completion_script_offers_exactly_the_commands_and_each_commands_options()
    {
        string script = Bash();
        List<string> commands = RealCommands();
        Assert.Contains("gc", commands);
        Assert.Contains("completion", commands);

        Dictionary<string, SortedSet<string>> offered = CompletionCase().Matches(script)
            .ToDictionary(m => m.Groups[1].Value, m => new SortedSet<string>(m.Groups[2].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries), StringComparer.Ordinal));
        // 'tcpfreeze help COMMAND' offers the commands.
        Assert.True(offered.Remove("help", out SortedSet<string>? afterHelp));
        Assert.True(afterHelp.SetEquals(commands));
        Assert.Equal(commands.Order(), offered.Keys.Order());
        foreach (string command in commands)
        {
            SortedSet<string> expected = RealOptions(command);
            if (command == "completion")
                expected.Add("bash"); // its argument, a word to choose
            Assert.True(expected.SetEquals(offered[command]), $"{command}: --help lists {string.Join(' ', expected)}; the script offers {string.Join(' ', offered[command])}");
        }
    }

    [Theory]
    [InlineData("tcpfreeze ", "attach detach gc freeze thaw list stats criu-config completion manpage help")]
    [InlineData("tcpfreeze s", "stats")]
    [InlineData("tcpfreeze help cr", "criu-config")]
    [InlineData("tcpfreeze --pin-root /sys/fs/bpf gc --", "--pin-root --hook-settings --wait --help")]
    [InlineData("tcpfreeze criu-config --", "--engine --hook --write --remove --config-dir --help")]
    [InlineData("tcpfreeze stats --format ", "text json prometheus")]
    [InlineData("tcpfreeze list -o ", "text json")]
    [InlineData("tcpfreeze attach --xdp-mode n", "native")]
    [InlineData("tcpfreeze freeze --lease ", "")]
    public void Bash_completes_what_the_command_line_takes(string line, string expected)
    {
        using var folder = new TempDirectory();
        string script = folder.Write("tcpfreeze.bash", Bash());
        // COMP_WORDS as bash splits the line; a trailing space starts an empty word.
        string program = $$"""
            source {{script}}
            read -ra COMP_WORDS <<<"$LINE"
            [[ $LINE == *' ' ]] && COMP_WORDS+=('')
            COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
            _tcpfreeze
            echo "${COMPREPLY[*]}"
            """;
        (int code, string output, string error) = Run.Capture("bash", ["-c", program], new Dictionary<string, string> { ["LINE"] = line }, TimeSpan.FromSeconds(20));
        Assert.True(code == 0, error);
        Assert.Equal(expected, output.Trim());
    }

    [Fact]
    public void The_man_page_names_exactly_the_commands_and_each_commands_options()
    {
        string page = TcpFreezeCommand.Run("manpage").Succeeds().Output;
        Assert.StartsWith(".\\\"", page);
        Assert.Contains(".TH TCPFREEZE 8 ", page);
        var sections = Regex.Split(page, @"^\.SH ", RegexOptions.Multiline).ToDictionary(s => s.Split('\n')[0], s => s);
        Assert.Contains("EXIT STATUS", sections.Keys);

        string[] commandSections = Regex.Split(sections["COMMANDS"], @"^\.SS ", RegexOptions.Multiline)[1..];
        Assert.Equal(RealCommands(), commandSections.Select(s => s.Split('\n')[0]));
        foreach (string section in commandSections.Prepend(sections["OPTIONS"]))
        {
            string command = section.Split('\n')[0];
            var listed = new SortedSet<string>(ManOption().Matches(section).Select(m => m.Groups[1].Value.Replace("\\-", "-", StringComparison.Ordinal)), StringComparer.Ordinal);
            SortedSet<string> real = command == "OPTIONS" ? RealOptions() : RealOptions(command);
            Assert.True(real.SetEquals(listed), $"{command}: --help lists {string.Join(' ', real)}; the man page {string.Join(' ', listed)}");
        }
        Assert.Contains("\n.B 2\nthe command line is wrong", sections["EXIT STATUS"]);
    }

    [Fact]
    public void Commands_list_only_the_shared_options_they_use_and_refuse_the_others_given_before_them()
    {
        SortedSet<string> criuConfig = RealOptions("criu-config");
        foreach (string ignored in new[] { "--pin-root", "--netns", "--wait", "--hook-settings" })
            Assert.DoesNotContain(ignored, criuConfig);
        SortedSet<string> gc = RealOptions("gc");
        Assert.DoesNotContain("--netns", gc);
        Assert.Contains("--hook-settings", gc);
        Assert.Contains("--wait", gc);
        Assert.Contains("--netns", RealOptions("list"));

        TcpFreezeCommand.Run("--wait", "3", "criu-config").FailsWith(2, "criu-config does not use --wait; see 'tcpfreeze criu-config --help'");
        TcpFreezeCommand.Run("--pin-root", "/sys/fs/bpf/tfb-unused", "criu-config").FailsWith(2, "criu-config does not use --pin-root");
        TcpFreezeCommand.Run("--netns", "none", "gc").FailsWith(2, "gc does not use --netns");
        TcpFreezeCommand.Run("criu-config", "--netns", "none").FailsWith(2, "unrecognized command or argument '--netns'");
    }

    [Fact]
    public void The_cli_page_states_the_exit_codes_in_the_words_of_the_help()
    {
        string help = Regex.Replace(TcpFreezeCommand.Run("--help").Succeeds().Output, @"\s+", " ");
        string codes = Regex.Match(help, @"Exit codes: [^.]*\.").Value;
        Assert.Equal("Exit codes: 0 done, 1 failed, 2 bad command line.", codes);
        string cli = File.ReadAllText(Path.Combine(Repository.Root, "docs", "cli.md"));
        // The page may explain a code in parentheses; without them it says what --help says.
        string stated = Regex.Replace(Regex.Match(cli, @"Exit codes: [^\n]*?command line\.").Value, @" \([^)]*\)", "");
        Assert.Equal(codes, stated);
        Assert.DoesNotContain("a non-zero code", cli);
    }

    [Theory]
    [InlineData("--format: 'prometheus' is not a format of list; use text or json", "list", "--format", "prometheus")]
    [InlineData("list: --json and --format text contradict each other", "list", "-j", "--format", "text")]
    [InlineData("stats: --json and --format prometheus contradict each other", "stats", "--json", "-o", "prometheus")]
    [InlineData("SHELL: 'zsh' is not a shell this command knows; use bash", "completion", "zsh")]
    public void Format_and_shell_mistakes_are_usage_errors(string message, params string[] arguments)
        => TcpFreezeCommand.Run(arguments).FailsWith(2, message);

    [GeneratedRegex(@"^  ([a-z][a-z-]*)\b")]
    private static partial Regex CommandLine();

    [GeneratedRegex(@"^  (-[^ ]*(?:, -[^ ]*)*(?: <[^>]+>)?)  ", RegexOptions.Multiline)]
    private static partial Regex OptionLine();

    [GeneratedRegex(@"^        ([a-z][a-z-]*)\) COMPREPLY=\(\$\(compgen -W '([^']*)'", RegexOptions.Multiline)]
    private static partial Regex CompletionCase();

    [GeneratedRegex(@"\\fB([^\\]*(?:\\-[^\\]*)*)\\fR")]
    private static partial Regex ManOption();
}
