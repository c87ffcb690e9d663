using System.Text;
using System.Text.RegularExpressions;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// The documentation is a map: the README lists the pages by task, and the pages point at each other, at the code
/// and at the benchmark results. Every relative link must lead to a file that exists and every #anchor to a heading
/// of that file, so that moving a page or renaming a heading cannot leave a reader at a dead end.
/// </summary>
public sealed class DocumentationLinkTests
{
    [Fact]
    public void Every_relative_link_and_anchor_in_the_documentation_leads_to_a_file_or_heading_that_exists()
    {
        string root = Repository.Root;
        string[] pages = DocumentationPages(root).ToArray();
        Assert.Contains("README.md", pages);
        Assert.Contains("docs/criu.md", pages);

        string[] problems = pages.SelectMany(page => MarkdownLinks.Problems(root, page)).ToArray();

        Assert.True(problems.Length == 0, $"{problems.Length} broken links:\n" + string.Join("\n", problems));
    }

    [Fact]
    public void A_link_to_a_missing_file_or_heading_is_reported_and_one_inside_code_is_not()
    {
        using var folder = new TempDirectory();
        Directory.CreateDirectory(Path.Combine(folder.Path, "docs"));
        folder.Write("README.md", """
            # Title

            ## The paper's experiment (`TcpFreeze.Migration --paper`)

            [fine](docs/page.md#a-heading) [fine too](#the-papers-experiment-tcpfreezemigration---paper)
            [no such file](docs/gone.md) [no such heading](docs/page.md#gone) ![no such image](docs/gone.png)
            `[in code](docs/gone.md)` [outside](https://example.org/gone.md)

            ```bash
            [in a block](docs/gone.md)
            ```
            """);
        folder.Write("docs/page.md", "# Page\n\n## A heading\n\n[back](../README.md#title) [lost](../README.md#gone)\n");

        string[] problems = [.. MarkdownLinks.Problems(folder.Path, "README.md"), .. MarkdownLinks.Problems(folder.Path, "docs/page.md")];

        Assert.Equal(
        [
            "README.md:6: docs/gone.md: no such file or folder",
            "README.md:6: docs/page.md#gone: docs/page.md has no heading 'gone'",
            "README.md:6: docs/gone.png: no such file or folder",
            "docs/page.md:5: ../README.md#gone: README.md has no heading 'gone'",
        ], problems);
    }

    [Theory]
    [InlineData("CRIU integration", "criu-integration")]
    [InlineData("The paper's experiment (`TcpFreeze.Migration --paper`)", "the-papers-experiment-tcpfreezemigration---paper")]
    [InlineData("5. The replay: for peers the kick cannot reach (issue 21)", "5-the-replay-for-peers-the-kick-cannot-reach-issue-21")]
    [InlineData("CRIU migration: the hook against no lock and CRIU's iptables lock (2026-12-07)", "criu-migration-the-hook-against-no-lock-and-crius-iptables-lock-2026-12-07")]
    [InlineData("5,000 and 10,000 connections, and the [hook](x.md)'s own cost", "5000-and-10000-connections-and-the-hooks-own-cost")]
    public void Anchors_are_the_ones_github_makes_from_a_heading(string heading, string anchor)
        => Assert.Equal(anchor, MarkdownLinks.Anchor(heading));

    /// <summary>README.md and the other top-level pages, docs/, the benchmarks' README and the package READMEs.</summary>
    private static IEnumerable<string> DocumentationPages(string root)
    {
        IEnumerable<string> files = Directory.GetFiles(root, "*.md")
            .Concat(Directory.GetFiles(Path.Combine(root, "docs"), "*.md", SearchOption.AllDirectories))
            .Concat(Directory.GetFiles(Path.Combine(root, "src"), "README.md", SearchOption.AllDirectories))
            .Append(Path.Combine(root, "benchmarks", "README.md"));
        return files.Select(f => Path.GetRelativePath(root, f).Replace('\\', '/'))
            .Where(f => !f.Contains("/bin/") && !f.Contains("/obj/"))
            .Order(StringComparer.Ordinal);
    }
}

/// <summary>Links and headings of Markdown pages as GitHub renders them, enough to check the project's own pages.</summary>
internal static partial class MarkdownLinks
{
    /// <summary>The repository's address on GitHub: links to its files there (package READMEs need absolute ones) are checked as relative ones.</summary>
    private const string RepositoryOnGitHub = "https://github.com/tcpfreeze/tcpfreeze";

    /// <summary>One line per broken link of <paramref name="page"/> (a path relative to <paramref name="root"/>): "page:line: target: why".</summary>
    public static IEnumerable<string> Problems(string root, string page)
    {
        string pageDirectory = Path.GetDirectoryName(Path.Combine(root, page))!;
        foreach ((string line, int number) in ProseLines(File.ReadAllText(Path.Combine(root, page))))
        {
            foreach (string target in Targets(line))
            {
                string? problem = Check(root, pageDirectory, page, target);
                if (problem is not null)
                    yield return $"{page}:{number}: {target}: {problem}";
            }
        }
    }

    /// <summary>The anchor GitHub gives a heading: its text lower-cased, without punctuation, spaces as hyphens.</summary>
    public static string Anchor(string heading)
    {
        string text = LinkInText().Replace(heading, "$1").ToLowerInvariant();
        var anchor = new StringBuilder(text.Length);
        foreach (char c in text)
        {
            if (c == ' ')
                anchor.Append('-');
            else if (c is '-' or '_' || char.IsLetterOrDigit(c))
                anchor.Append(c);
        }
        return anchor.ToString();
    }

    private static string? Check(string root, string pageDirectory, string page, string target)
    {
        if (target.StartsWith(RepositoryOnGitHub, StringComparison.Ordinal))
        {
            string rest = target[RepositoryOnGitHub.Length..];
            if (rest.StartsWith("/blob/main/", StringComparison.Ordinal) || rest.StartsWith("/tree/main/", StringComparison.Ordinal))
                return Check(root, root, page, rest["/blob/main/".Length..]);
            if (rest.Length == 0 || rest == "/")
                return null;
            if (rest.StartsWith('#'))
                return Check(root, root, page, "README.md" + rest);
            return "an address of the repository that this test cannot check";
        }
        if (Scheme().IsMatch(target))
            return null;                                            // another site: not ours to check

        int hash = target.IndexOf('#');
        string path = Uri.UnescapeDataString(hash < 0 ? target : target[..hash]);
        string? anchor = hash < 0 ? null : target[(hash + 1)..];
        string file = path.Length == 0 ? Path.Combine(root, page) : Path.GetFullPath(Path.Combine(pageDirectory, path));
        if (!File.Exists(file) && !Directory.Exists(file))
            return "no such file or folder";
        if (anchor is null || !file.EndsWith(".md", StringComparison.Ordinal))
            return null;
        return Anchors(File.ReadAllText(file)).Contains(anchor)
            ? null
            : $"{Path.GetRelativePath(root, file).Replace('\\', '/')} has no heading '{anchor}'";
    }

    /// <summary>The anchors of a page's headings; a repeated heading gets -1, -2, ... as on GitHub.</summary>
    private static HashSet<string> Anchors(string markdown)
    {
        var anchors = new HashSet<string>(StringComparer.Ordinal);
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach ((string line, _) in ProseLines(markdown))
        {
            Match heading = Heading().Match(line);
            if (!heading.Success)
                continue;
            string anchor = Anchor(heading.Groups[1].Value);
            int times = seen.GetValueOrDefault(anchor);
            seen[anchor] = times + 1;
            anchors.Add(times == 0 ? anchor : $"{anchor}-{times}");
        }
        return anchors;
    }

    /// <summary>The lines outside fenced code blocks, numbered from 1.</summary>
    private static IEnumerable<(string Line, int Number)> ProseLines(string markdown)
    {
        bool inFence = false;
        string[] lines = markdown.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].TrimEnd('\r');
            if (line.TrimStart().StartsWith("```", StringComparison.Ordinal))
                inFence = !inFence;
            else if (!inFence)
                yield return (line, i + 1);
        }
    }

    /// <summary>The targets of a line's inline links and images and of a reference definition; code spans hold none.</summary>
    private static IEnumerable<string> Targets(string line)
    {
        string prose = CodeSpan().Replace(line, "");
        foreach (Match link in InlineLink().Matches(prose))
            yield return link.Groups[1].Value;
        Match definition = ReferenceDefinition().Match(prose);
        if (definition.Success)
            yield return definition.Groups[1].Value;
    }

    [GeneratedRegex(@"\]\(<?([^)\s>]+)>?(?:\s+""[^""]*"")?\)")]
    private static partial Regex InlineLink();

    [GeneratedRegex(@"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")]
    private static partial Regex ReferenceDefinition();

    [GeneratedRegex(@"(`+).*?\1")]
    private static partial Regex CodeSpan();

    [GeneratedRegex(@"^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")]
    private static partial Regex Heading();

    [GeneratedRegex(@"\[([^\]]*)\]\([^)]*\)")]
    private static partial Regex LinkInText();

    [GeneratedRegex(@"^[a-zA-Z][a-zA-Z0-9+.-]*:")]
    private static partial Regex Scheme();
}
