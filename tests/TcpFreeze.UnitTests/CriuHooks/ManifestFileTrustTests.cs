using System.Diagnostics;
using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.CriuHookUnit;

/// <summary>
/// The images directory is not the hook's alone: whatever someone planted there, writing the
/// manifest never writes through a link or into a file it did not create, and reading it
/// never follows a link, never blocks and never reads more than a manifest can be.
/// </summary>
public sealed class ManifestFileTrustTests : IDisposable
{
    private readonly TempDirectory _images = new();
    private static readonly ConnectionKey V4 = ConnectionKey.Parse("198.18.0.1:8080 -> 198.18.0.2:40000");

    public void Dispose() => _images.Dispose();

    private string ManifestPath => _images.File(FreezeManifest.FileName);

    private static FreezeManifest Sample() => FreezeManifest.Create(42, TimeSpan.FromSeconds(30), [V4], []);

    /// <summary>Reads the manifest on another thread, so that a read that blocks fails the test instead of hanging it.</summary>
    private string ReadErrorWithin(TimeSpan bound)
    {
        var watch = Stopwatch.StartNew();
        Task<Exception?> read = Task.Run(() =>
        {
            try
            {
                FreezeManifest.Read(_images.Path);
                return null;
            }
            catch (Exception e)
            {
                return e;
            }
        });
        Assert.True(read.Wait(bound), $"reading the manifest did not return within {bound.TotalSeconds} s");
        Assert.True(watch.Elapsed < bound);
        return Assert.IsType<InvalidDataException>(read.Result).Message;
    }

    [Fact]
    public void A_link_planted_as_the_temporary_file_is_not_followed()
    {
        string victim = _images.Write("victim", "precious");
        File.CreateSymbolicLink(ManifestPath + ".tmp", victim);
        Sample().Write(_images.Path);
        Assert.Equal("precious", File.ReadAllText(victim));
        Assert.Equal(42, FreezeManifest.Read(_images.Path).InitPid);
    }

    [Fact]
    public void A_link_planted_as_the_manifest_is_replaced_not_written_through()
    {
        string victim = _images.Write("victim", "precious");
        File.CreateSymbolicLink(ManifestPath, victim);
        Sample().Write(_images.Path);
        Assert.Equal("precious", File.ReadAllText(victim));
        Assert.Null(new FileInfo(ManifestPath).LinkTarget);
        Assert.Equal(42, FreezeManifest.Read(_images.Path).InitPid);
    }

    [Fact]
    public void Writing_twice_leaves_only_the_manifest()
    {
        Sample().Write(_images.Path);
        Sample().Write(_images.Path);
        Assert.Equal([FreezeManifest.FileName], Directory.GetFileSystemEntries(_images.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void A_fifo_as_the_manifest_is_refused_at_once_instead_of_hanging_the_restore()
    {
        (int code, _, string error) = Run.Capture("mkfifo", [ManifestPath], null, TimeSpan.FromSeconds(10));
        Assert.True(code == 0, error);
        string message = ReadErrorWithin(TimeSpan.FromSeconds(5));
        Assert.Contains($"{FreezeManifest.FileName} in the images directory is a FIFO, not a regular file", message);
    }

    [Fact]
    public void A_link_to_dev_zero_as_the_manifest_is_refused_at_once_without_reading_it()
    {
        File.CreateSymbolicLink(ManifestPath, "/dev/zero");
        string message = ReadErrorWithin(TimeSpan.FromSeconds(5));
        Assert.Contains($"{FreezeManifest.FileName} in the images directory is a symbolic link", message);
    }

    [Fact]
    public void A_link_to_a_valid_manifest_is_refused_too()
    {
        string elsewhere = Directory.CreateTempSubdirectory("tcpfreeze-test-").FullName;
        try
        {
            Sample().Write(elsewhere);
            File.CreateSymbolicLink(ManifestPath, Path.Combine(elsewhere, FreezeManifest.FileName));
            Assert.Contains("is a symbolic link", ReadErrorWithin(TimeSpan.FromSeconds(5)));
        }
        finally
        {
            Directory.Delete(elsewhere, recursive: true);
        }
    }

    [Fact]
    public void A_directory_as_the_manifest_is_refused_by_type()
    {
        Directory.CreateDirectory(ManifestPath);
        Assert.Contains("is a directory, not a regular file", ReadErrorWithin(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public void A_manifest_larger_than_any_real_one_is_refused_without_reading_it()
    {
        using (FileStream sparse = new(ManifestPath, FileMode.CreateNew))
            sparse.SetLength(FreezeManifest.MaximumFileSize + 1);
        Assert.Contains("more than any manifest (64 MiB at most)", ReadErrorWithin(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public void A_large_regular_manifest_is_read_whole()
    {
        // A valid manifest followed by a mebibyte of white space (JSON allows it): read to the end.
        byte[] json = System.Text.Encoding.UTF8.GetBytes("""{ "version": 1, "connections": ["198.18.0.1:8080 -> 198.18.0.2:40000"], "endpoints": [] }""");
        using (FileStream file = new(ManifestPath, FileMode.CreateNew))
        {
            file.Write(json);
            file.Write(Enumerable.Repeat((byte)' ', 1 << 20).ToArray());
        }
        Assert.Equal([V4], FreezeManifest.Read(_images.Path).ConnectionKeys());
    }
}
