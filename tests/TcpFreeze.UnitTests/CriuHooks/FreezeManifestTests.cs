using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.CriuHookUnit;

public sealed class FreezeManifestTests : IDisposable
{
    private readonly TempDirectory _images = new();

    public void Dispose() => _images.Dispose();

    private static readonly ConnectionKey V4 = ConnectionKey.Parse("198.18.0.1:8080 -> 198.18.0.2:40000");
    private static readonly ConnectionKey V6 = ConnectionKey.Parse("[2001:db8::1]:443 -> [2001:db8::2]:51000");
    private static readonly EndpointKey ListenerV4 = EndpointKey.Parse("0.0.0.0:8080");
    private static readonly EndpointKey ListenerV6 = EndpointKey.Parse("[2001:db8::1]:443");

    private string ManifestPath => _images.File(FreezeManifest.FileName);

    private string ReadError(string json)
    {
        File.WriteAllText(ManifestPath, json);
        return Assert.Throws<InvalidDataException>(() => FreezeManifest.Read(_images.Path)).Message;
    }

    private static string Json(string connections = """["198.18.0.1:8080 -> 198.18.0.2:40000"]""", string endpoints = """["0.0.0.0:8080"]""", int version = 1, string extra = "")
        => $$"""{ "version": {{version}}, "createdUtc": "2026-01-01T00:00:00.0000000Z", "initPid": 42, "leaseSeconds": 120, {{extra}} "connections": {{connections}}, "endpoints": {{endpoints}} }""";

    [Fact]
    public void IPv4_and_IPv6_connections_and_endpoints_round_trip()
    {
        FreezeManifest written = FreezeManifest.Create(4242, TimeSpan.FromSeconds(90.5), [V4, V6], [ListenerV4, ListenerV6]);
        written.Write(_images.Path);

        FreezeManifest read = FreezeManifest.Read(_images.Path);
        Assert.Equal(FreezeManifest.CurrentVersion, read.Version);
        Assert.Equal(4242, read.InitPid);
        Assert.Equal(90.5, read.LeaseSeconds);
        Assert.False(read.OwnNetworkNamespace);
        Assert.Equal(written.CreatedUtc, read.CreatedUtc);
        Assert.Equal([V4, V6], read.ConnectionKeys());
        Assert.Equal([ListenerV4, ListenerV6], read.EndpointKeys());
        Assert.Equal(["198.18.0.1:8080 -> 198.18.0.2:40000", "[2001:db8::1]:443 -> [2001:db8::2]:51000"], read.Connections);
    }

    [Fact]
    public void An_own_namespace_manifest_with_nothing_frozen_round_trips()
    {
        (FreezeManifest.Create(7, TimeSpan.FromSeconds(120), [], []) with { OwnNetworkNamespace = true }).Write(_images.Path);
        FreezeManifest read = FreezeManifest.Read(_images.Path);
        Assert.True(read.OwnNetworkNamespace);
        Assert.Empty(read.ConnectionKeys());
        Assert.Empty(read.EndpointKeys());
    }

    [Fact]
    public void The_file_uses_the_documented_camel_case_names()
    {
        FreezeManifest.Create(1, TimeSpan.FromSeconds(1), [V4], [ListenerV4]).Write(_images.Path);
        string json = File.ReadAllText(ManifestPath);
        foreach (string name in new[] { "version", "createdUtc", "initPid", "leaseSeconds", "ownNetworkNamespace", "connections", "endpoints" })
            Assert.Contains($"\"{name}\"", json);
    }

    [Fact]
    public void Keys_are_written_as_people_read_them_and_the_escaped_spelling_of_older_hooks_still_reads()
    {
        FreezeManifest.Create(1, TimeSpan.FromSeconds(1), [V4], [ListenerV4]).Write(_images.Path);
        string json = File.ReadAllText(ManifestPath);
        Assert.Contains("\"198.18.0.1:8080 -> 198.18.0.2:40000\"", json);
        Assert.DoesNotContain("\\u003E", json, StringComparison.OrdinalIgnoreCase);

        // What hooks before this change wrote: the same string, '>' escaped by the default encoder.
        File.WriteAllText(ManifestPath, Json(connections: """["198.18.0.1:8080 -\u003E 198.18.0.2:40000"]"""));
        Assert.Equal([V4], FreezeManifest.Read(_images.Path).ConnectionKeys());
    }

    [Fact]
    public void Writing_is_atomic_and_leaves_no_temporary_file()
    {
        FreezeManifest.Create(1, TimeSpan.FromSeconds(1), [V4], []).Write(_images.Path);
        FreezeManifest.Create(2, TimeSpan.FromSeconds(1), [V6], []).Write(_images.Path); // replaces the first
        Assert.Equal([FreezeManifest.FileName], Directory.GetFiles(_images.Path).Select(Path.GetFileName));
        Assert.Equal(2, FreezeManifest.Read(_images.Path).InitPid);
    }

    [Fact]
    public void A_missing_manifest_says_the_images_were_not_dumped_with_the_hook()
    {
        string message = Assert.Throws<InvalidDataException>(() => FreezeManifest.Read(_images.Path)).Message;
        Assert.Contains($"there is no {FreezeManifest.FileName}", message);
        Assert.Contains("Dump again with the hook", message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("  \n\t ")]
    public void An_empty_manifest_is_refused_as_empty(string content)
    {
        string message = ReadError(content);
        Assert.Contains($"{FreezeManifest.FileName} is empty", message);
    }

    [Theory]
    [InlineData("{ \"version\": 1, ")]
    [InlineData("not json")]
    [InlineData("[1, 2]")]
    [InlineData("{ \"version\": \"one\" }")]
    [InlineData("{ \"version\": 1, \"connections\": \"198.18.0.1:80 198.18.0.2:80\" }")]
    public void Invalid_json_is_refused_as_corrupt(string content)
    {
        string message = ReadError(content);
        Assert.Contains($"{FreezeManifest.FileName} is corrupt", message);
        Assert.Contains("refusing to restore", message);
    }

    [Fact]
    public void Json_null_is_refused()
        => Assert.Contains("JSON null, not a manifest", ReadError("null"));

    [Fact]
    public void An_object_without_a_version_is_not_taken_for_an_empty_manifest()
        => Assert.Contains($"{FreezeManifest.FileName} is corrupt", ReadError("{}"));

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    public void Another_format_version_is_refused(int version)
        => Assert.Contains($"has format version {version}; this hook reads version 1", ReadError(Json(version: version)));

    [Theory]
    [InlineData("""["198.18.0.1:8080 -> nonsense"]""", "nonsense")]
    [InlineData("""["198.18.0.1:8080"]""", "is not a connection")]
    [InlineData("""["198.18.0.1:8080 -> [2001:db8::2]:80"]""", "mix IPv4 and IPv6")]
    [InlineData("""["198.18.0.1:0 -> 198.18.0.2:80"]""", "port 0")]
    public void A_connection_that_does_not_parse_is_refused_as_corrupt(string connections, string reason)
    {
        string message = ReadError(Json(connections: connections));
        Assert.StartsWith($"{FreezeManifest.FileName} is corrupt: ", message);
        Assert.Contains(reason, message);
    }

    [Theory]
    [InlineData("""["198.18.0.1"]""", "no port")]
    [InlineData("""["198.18.0.1:0"]""", "port 0")]
    public void An_endpoint_that_does_not_parse_is_refused_as_corrupt(string endpoints, string reason)
    {
        string message = ReadError(Json(endpoints: endpoints));
        Assert.StartsWith($"{FreezeManifest.FileName} is corrupt: ", message);
        Assert.Contains(reason, message);
    }

    [Theory]
    [InlineData("null", "[]")]
    [InlineData("[]", "null")]
    [InlineData("[null]", "[]")]
    [InlineData("[]", "[\"0.0.0.0:80\", null]")]
    public void Null_lists_or_elements_are_refused_as_corrupt(string connections, string endpoints)
        => Assert.Contains("must be lists of strings", ReadError(Json(connections: connections, endpoints: endpoints)));

    [Fact]
    public void Unknown_fields_from_a_newer_writer_are_ignored()
    {
        File.WriteAllText(ManifestPath, Json(extra: """ "hostName": "node-a", "checksums": { "a": [1, 2] }, "future": null, """));
        FreezeManifest read = FreezeManifest.Read(_images.Path);
        Assert.Equal([V4], read.ConnectionKeys());
        Assert.Equal([ListenerV4], read.EndpointKeys());
        Assert.Equal(42, read.InitPid);
    }
}
