using System.Net.Sockets;
using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>The source behind the runtime proof: every process start goes through an argument list.</summary>
public sealed class ProcessStartSourceTests
{
    [Fact]
    public void Every_process_start_in_src_uses_an_argument_list_and_no_shell()
    {
        string src = Path.Combine(Repository.Root, "src");
        string[] files = Directory.GetFiles(src, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}"))
            .ToArray();
        int starts = 0;
        foreach (string file in files)
        {
            string text = File.ReadAllText(file);
            string where = Path.GetRelativePath(src, file);
            Assert.DoesNotContain("UseShellExecute = true", text);
            Assert.False(System.Text.RegularExpressions.Regex.IsMatch(text, @"\bArguments\s*=[^=]"), $"{where} sets ProcessStartInfo.Arguments (one string a parser splits) instead of ArgumentList");
            Assert.False(System.Text.RegularExpressions.Regex.IsMatch(text, @"Process\.Start\([^)]*,"), $"{where} starts a process with an argument string");
            foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(text, @"new ProcessStartInfo\(([^)]*)\)"))
            {
                starts++;
                Assert.DoesNotContain(",", m.Groups[1].Value);
                Assert.Contains("UseShellExecute = false", text);
                Assert.Contains("ArgumentList.Add", text);
            }
        }
        Assert.True(starts >= 2, $"found only {starts} ProcessStartInfo uses in src/: the dump watcher and nft should be there");
    }
}
