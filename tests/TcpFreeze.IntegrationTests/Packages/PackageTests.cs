using System.IO.Compression;
using System.Reflection.Metadata;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.Packages;

/// <summary>
/// The packages a CI build makes (<see cref="PackedClone"/>): each with a README of its own and the version from git,
/// PDBs without machine paths and with a source link to the commit, a BPF object without machine paths, a tool
/// package that installs a native tcpfreeze, and the README's five-minute example working against them.
/// </summary>
public sealed partial class PackageTests(PackedClone packed) : IClassFixture<PackedClone>
{
    private static readonly (string Id, string Project, string Assembly)[] Packages =
    [
        ("TcpFreeze.Native", "src/Native", "TcpFreeze.Native"),
        ("TcpFreeze.Ebpf.Interop", "src/Ebpf.Interop", "TcpFreeze.Ebpf.Interop"),
        ("TcpFreeze", "src/TcpFreeze", "TcpFreeze"),
        ("TcpFreeze.CriuHooks", "src/CriuHooks", "TcpFreeze.CriuHooks"),
        ("TcpFreeze.Cli", "src/TcpFreeze.Cli", "TcpFreeze.Cli"),
    ];

    private static readonly Guid SourceLinkKind = new("CC110556-A091-4D38-9FEC-25AB9A351A6A");

    private static readonly Dictionary<string, string> NoDotnet = new() { ["DOTNET_ROOT"] = "/nonexistent", ["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin" };

    [GeneratedRegex(@"^\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?$")]
    private static partial Regex SemanticVersion();

    // A markdown link or image whose target is not an absolute URL: it would not resolve on a package page.
    [GeneratedRegex(@"\]\((?!https?://)")]
    private static partial Regex RelativeLink();

    private string Version => PackedClone.Version(packed.Package("TcpFreeze"), "TcpFreeze");

    [Fact]
    public void Every_package_carries_its_own_short_readme_and_the_version_from_git()
    {
        packed.AssertPacked();
        Assert.Matches(SemanticVersion(), Version);
        Assert.NotEqual("0.1.0", Version);
        foreach ((string id, string project, _) in Packages)
        {
            string package = packed.Package(id);
            Assert.Equal(Version, PackedClone.Version(package, id));
            using ZipArchive zip = ZipFile.OpenRead(package);
            XElement metadata = Nuspec(zip);
            Assert.Equal("README.md", metadata.Elements().Single(e => e.Name.LocalName == "readme").Value);
            string readme = Read(zip, "README.md");
            Assert.Equal(File.ReadAllText(Path.Combine(packed.Clone, project, "README.md")), readme);
            Assert.True(readme.Length < 4000, $"{id}'s README has {readme.Length} characters: a package README is a short introduction");
            Assert.DoesNotMatch(RelativeLink(), readme);
            Assert.Contains("https://github.com/tcpfreeze/tcpfreeze", readme, StringComparison.Ordinal);
        }
        // The tool's platform packages, with the same version.
        Assert.Equal(Version, PackedClone.Version(packed.Package("TcpFreeze.Cli.any"), "TcpFreeze.Cli.any"));
        Assert.Equal(Version, PackedClone.Version(packed.Package("TcpFreeze.Cli.linux-x64"), "TcpFreeze.Cli.linux-x64"));
    }

    [Fact]
    public void A_ci_build_maps_source_paths_and_its_source_link_points_at_the_commit()
    {
        packed.AssertPacked();
        foreach ((string id, _, string assembly) in Packages.Where(p => p.Id != "TcpFreeze.Cli"))
        {
            using ZipArchive symbols = ZipFile.OpenRead(packed.Package(id, ".snupkg"));
            using var pdb = new MemoryStream(Bytes(symbols, $"lib/net10.0/{assembly}.pdb"));
            using MetadataReaderProvider provider = MetadataReaderProvider.FromPortablePdbStream(pdb);
            MetadataReader reader = provider.GetMetadataReader();

            string[] documents = reader.Documents.Select(d => reader.GetString(reader.GetDocument(d).Name)).ToArray();
            Assert.NotEmpty(documents);
            Assert.All(documents, name => Assert.StartsWith("/_/", name, StringComparison.Ordinal));
            string sourceLink = reader.CustomDebugInformation
                .Select(reader.GetCustomDebugInformation)
                .Where(info => reader.GetGuid(info.Kind) == SourceLinkKind)
                .Select(info => Encoding.UTF8.GetString(reader.GetBlobBytes(info.Value)))
                .Single();
            Assert.Contains($"\"/_/*\":\"https://raw.githubusercontent.com/", sourceLink, StringComparison.Ordinal);
            Assert.Contains($"/{packed.Head}/*\"", sourceLink, StringComparison.Ordinal);

            using ZipArchive package = ZipFile.OpenRead(packed.Package(id));
            XElement repository = Nuspec(package).Elements().Single(e => e.Name.LocalName == "repository");
            Assert.Equal(packed.Head, repository.Attribute("commit")?.Value);
        }

        // The BPF object embedded in TcpFreeze.dll: its debug info names /_/bpf/..., not the clone's folder.
        using ZipArchive library = ZipFile.OpenRead(packed.Package("TcpFreeze"));
        byte[] dll = Bytes(library, "lib/net10.0/TcpFreeze.dll");
        Assert.True(dll.AsSpan().IndexOf("/_/bpf/tcpfreeze.bpf.c"u8) >= 0, "TcpFreeze.dll's BPF object does not name /_/bpf/tcpfreeze.bpf.c");
        Assert.True(dll.AsSpan().IndexOf(Encoding.UTF8.GetBytes(packed.Clone)) < 0, $"TcpFreeze.dll names the build folder {packed.Clone}");
    }

    [Fact]
    public void The_tool_package_installs_a_native_tcpfreeze_that_runs_without_dotnet()
    {
        packed.AssertPacked();
        string tools = packed.Scratch("tools");
        (int code, string output, string error) = Run.Capture("dotnet",
            ["tool", "install", "--tool-path", tools, "--add-source", packed.Packages, "TcpFreeze.Cli", "--version", Version],
            new Dictionary<string, string> { ["NUGET_PACKAGES"] = packed.Scratch("tool-nuget"), ["DOTNET_NOLOGO"] = "1" }, TimeSpan.FromMinutes(5));
        Assert.True(code == 0, $"dotnet tool install exited {code}: {error}{output}");

        string command = Path.Combine(tools, "tcpfreeze");
        byte[] head = new byte[4];
        using (FileStream file = File.OpenRead(command))
            file.ReadExactly(head);
        Assert.Equal(new byte[] { 0x7F, (byte)'E', (byte)'L', (byte)'F' }, head);
        Assert.False(File.Exists(Path.Combine(Path.GetDirectoryName(new FileInfo(command).ResolveLinkTarget(true)!.FullName)!, "TcpFreeze.Cli.dll")),
            "the linux-x64 tool package holds TcpFreeze.Cli.dll: it is not the NativeAOT build");
        (code, output, error) = Run.Capture(command, ["--version"], NoDotnet, TimeSpan.FromSeconds(30));
        Assert.True(code == 0, $"tcpfreeze --version exited {code}: {error}");
        Assert.Equal($"{Version}+{packed.Head}", output.Trim());
    }

    [RootFact]
    [Trait("Privileges", "root")]
    public void The_five_minute_example_builds_against_the_packages_and_freezes_a_connection_in_a_namespace_of_its_own()
    {
        packed.AssertPacked();
        string project = packed.Scratch("try");
        // As the README says: the folder of packages as a source next to nuget.org, and a reference to TcpFreeze.
        File.WriteAllText(Path.Combine(project, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
                <add key="tcpfreeze-local" value="{packed.Packages}" />
              </packageSources>
            </configuration>
            """);
        File.WriteAllText(Path.Combine(project, "TryTcpFreeze.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="TcpFreeze" Version="{Version}" />
              </ItemGroup>
            </Project>
            """);
        File.Copy(Path.Combine(packed.Clone, "samples", "TryTcpFreeze", "Program.cs"), Path.Combine(project, "Program.cs"));
        // The clone's packages go to a cache folder of the test's own; the machine's cache serves the rest.
        string home = Environment.GetEnvironmentVariable("HOME") ?? "/root";
        (int code, string output, string error) = Run.Capture("dotnet",
            ["build", project, "-c", "Release", "-nologo", $"-p:RestorePackagesPath={packed.Scratch("try-nuget")}",
             $"-p:RestoreAdditionalProjectFallbackFolders={Path.Combine(home, ".nuget", "packages")}"],
            new Dictionary<string, string> { ["MSBUILDDISABLENODEREUSE"] = "1", ["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0", ["UseSharedCompilation"] = "false" },
            TimeSpan.FromMinutes(5));
        Assert.True(code == 0, $"building the example against the packages exited {code}: {error}{output}");

        string name = $"tfz{Environment.ProcessId}try";
        Run.Checked("ip", "netns", "add", name);
        try
        {
            Run.Checked("ip", "-n", name, "link", "set", "lo", "up");
            (code, output, error) = Run.Capture("dotnet", [Path.Combine(project, "bin", "Release", "net10.0", "TryTcpFreeze.dll"), name], null, TimeSpan.FromSeconds(60));

            Assert.True(code == 0, $"the example exited {code}: {error}{output}");
            Assert.Contains("nothing arrives for 1 s", output, StringComparison.Ordinal);
            Assert.Contains("the server received 'hello'", output, StringComparison.Ordinal);
        }
        finally
        {
            Run.Capture("ip", "netns", "delete", name);
            if (Directory.Exists($"/sys/fs/bpf/{name}"))
                Directory.Delete($"/sys/fs/bpf/{name}", recursive: true);
        }
    }

    private static XElement Nuspec(ZipArchive zip)
    {
        ZipArchiveEntry entry = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal) && !e.FullName.Contains('/'));
        using Stream stream = entry.Open();
        return XDocument.Load(stream).Root!.Elements().Single(e => e.Name.LocalName == "metadata");
    }

    private static string Read(ZipArchive zip, string path) => Encoding.UTF8.GetString(Bytes(zip, path));

    private static byte[] Bytes(ZipArchive zip, string path)
    {
        ZipArchiveEntry entry = zip.GetEntry(path) ?? throw new InvalidOperationException($"no {path} in the package: {string.Join(", ", zip.Entries.Select(e => e.FullName))}");
        using Stream stream = entry.Open();
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
