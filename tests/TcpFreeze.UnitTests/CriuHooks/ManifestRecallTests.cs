using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.CriuHookUnit;

/// <summary>Alone: the manifest a process read last is one per process, and other tests read manifests too.</summary>
[CollectionDefinition("manifest recall", DisableParallelization = true)]
public sealed class ManifestRecallCollection;

/// <summary>
/// A resident agent parses a manifest once: reading the very bytes it read or wrote last gives that manifest back;
/// any other content is parsed and checked again, so a file changed or damaged in between is never taken for it.
/// </summary>
[Collection("manifest recall")]
public sealed class ManifestRecallTests : IDisposable
{
    private readonly TempDirectory _images = new();

    public void Dispose() => _images.Dispose();

    private static readonly ConnectionKey Key = ConnectionKey.Parse("198.18.0.1:8080 -> 198.18.0.2:40000");

    [Fact]
    public void The_same_bytes_give_the_manifest_read_before_and_other_bytes_are_parsed_and_checked_again()
    {
        FreezeManifest.Create(4242, TimeSpan.FromSeconds(90), [Key], []).Write(_images.Path);
        FreezeManifest first = FreezeManifest.Read(_images.Path);

        Assert.Same(first, FreezeManifest.Read(_images.Path));

        File.WriteAllText(_images.File(FreezeManifest.FileName), "{ broken");
        Assert.Throws<InvalidDataException>(() => FreezeManifest.Read(_images.Path));

        FreezeManifest.Create(4243, TimeSpan.FromSeconds(90), [Key], []).Write(_images.Path);
        FreezeManifest other = FreezeManifest.Read(_images.Path);
        Assert.NotSame(first, other);
        Assert.Equal(4243, other.InitPid);
    }

    [Fact]
    public void A_manifest_remembered_as_written_is_what_reading_its_bytes_gives()
    {
        FreezeManifest written = FreezeManifest.Create(77, TimeSpan.FromSeconds(30), [Key], []);
        byte[] json = written.ToJson();
        File.WriteAllBytes(_images.File(FreezeManifest.FileName), json);
        FreezeManifest.Remember(json, written);

        Assert.Same(written, FreezeManifest.Read(_images.Path));
    }
}
