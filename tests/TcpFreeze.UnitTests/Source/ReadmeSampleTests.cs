using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// The README's "try the library in five minutes" example is samples/TryTcpFreeze/Program.cs, which the solution
/// builds and an integration test runs against the packages (PackageTests): the README's copy must be that file.
/// </summary>
public sealed class ReadmeSampleTests
{
    private const string Marker = "<!-- samples/TryTcpFreeze/Program.cs -->";

    [Fact]
    public void The_readmes_five_minute_example_is_the_sample_the_tests_build_and_run()
    {
        string readme = File.ReadAllText(Path.Combine(Repository.Root, "README.md"));
        int marker = readme.IndexOf(Marker, StringComparison.Ordinal);
        Assert.True(marker >= 0, $"README.md has no '{Marker}' line before the example");
        int start = readme.IndexOf("```csharp\n", marker, StringComparison.Ordinal) + "```csharp\n".Length;
        int end = readme.IndexOf("\n```\n", start, StringComparison.Ordinal) + 1;

        string sample = File.ReadAllText(Path.Combine(Repository.Root, "samples", "TryTcpFreeze", "Program.cs"));

        Assert.Equal(sample, readme[start..end]);
    }
}
