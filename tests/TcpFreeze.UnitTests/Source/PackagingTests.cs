using System.IO.Compression;
using System.Reflection;
using System.Runtime.Loader;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>`dotnet pack` makes packages users can consume: library, XML docs, README, symbols, and the BPF object inside the assembly.</summary>
/// <remarks>In the "criu" collection because the fixture there builds the same projects: two builds must not run at once.</remarks>
[Collection("criu")]
public sealed class PackagingTests : IDisposable
{
    private readonly string _output = Directory.CreateTempSubdirectory("tcpfreeze-pack-").FullName;

    [Fact]
    public void The_TcpFreeze_package_carries_the_library_its_docs_and_the_embedded_bpf_object()
    {
        string project = Path.Combine(Repository.Root, "src", "TcpFreeze", "TcpFreeze.csproj");
        (int code, string output, string error) = Run.Capture("dotnet", ["pack", project, "-c", "Release", "-o", _output, "-nologo"], null, TimeSpan.FromMinutes(5));
        Assert.True(code == 0, error + output);

        // The version comes from git (MinVer), never a fixed 0.1.0 that every commit repeats.
        string package = Assert.Single(Directory.GetFiles(_output, "TcpFreeze.*.nupkg"), path => char.IsAsciiDigit(Path.GetFileName(path)["TcpFreeze.".Length]));
        string version = Path.GetFileName(package)["TcpFreeze.".Length..^".nupkg".Length];
        Assert.NotEqual("0.1.0", version);
        Assert.True(File.Exists(Path.Combine(_output, $"TcpFreeze.{version}.snupkg")), "no symbol package");
        using ZipArchive zip = ZipFile.OpenRead(package);
        string[] entries = zip.Entries.Select(e => e.FullName).ToArray();
        Assert.Contains("lib/net10.0/TcpFreeze.dll", entries);
        Assert.Contains("lib/net10.0/TcpFreeze.xml", entries);
        Assert.Contains("README.md", entries);
        using (var nuspec = new StreamReader(zip.GetEntry("TcpFreeze.nuspec")!.Open()))
        {
            string text = nuspec.ReadToEnd();
            Assert.Contains("<dependency id=\"TcpFreeze.Ebpf.Interop\"", text);
            Assert.Contains("<license type=\"expression\">MIT</license>", text);
        }

        string dll = Path.Combine(_output, "TcpFreeze.dll");
        zip.GetEntry("lib/net10.0/TcpFreeze.dll")!.ExtractToFile(dll);
        var context = new AssemblyLoadContext("packaged", isCollectible: true);
        try
        {
            Assembly packaged = context.LoadFromAssemblyPath(dll);
            Assert.Contains("TcpFreeze.tcpfreeze.bpf.o", packaged.GetManifestResourceNames());
            using Stream bpf = packaged.GetManifestResourceStream("TcpFreeze.tcpfreeze.bpf.o")!;
            var magic = new byte[4];
            bpf.ReadExactly(magic);
            Assert.Equal(new byte[] { 0x7F, (byte)'E', (byte)'L', (byte)'F' }, magic);
        }
        finally
        {
            context.Unload();
        }
    }

    public void Dispose() => Directory.Delete(_output, recursive: true);
}
