using System.Text.Json;
using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.CriuHookUnit;

/// <summary>
/// The peer segments a manifest carries to the restore host (issue 21): they round trip,
/// they stay within their budget, and the reader refuses any the dump host's programs
/// could not have kept, naming the file.
/// </summary>
public sealed class FreezeManifestSegmentTests : IDisposable
{
    private readonly TempDirectory _images = new();

    public void Dispose() => _images.Dispose();

    private const string V4Text = "198.18.0.1:8080 -> 198.18.0.2:40000";
    private static readonly ConnectionKey V4 = ConnectionKey.Parse(V4Text);
    private static readonly ConnectionKey V6 = ConnectionKey.Parse("[2001:db8::1]:443 -> [2001:db8::2]:51000");

    private string ManifestPath => _images.File(FreezeManifest.FileName);

    private static byte[] Bytes(int length, byte seed = 1) => Enumerable.Range(0, length).Select(i => (byte)(i * 7 + seed)).ToArray();

    private string ReadError(string segments)
    {
        File.WriteAllText(ManifestPath,
            $$"""{ "version": 1, "initPid": 42, "leaseSeconds": 120, "connections": ["{{V4Text}}"], "endpoints": [], "peerSegments": {{segments}} }""");
        return Assert.Throws<InvalidDataException>(() => FreezeManifest.Read(_images.Path)).Message;
    }

    [Fact]
    public void Peer_segments_round_trip_as_base64_with_their_ip_length()
    {
        byte[] v4 = Bytes(60), v6 = Bytes(PeerSegment.MaxBytes, 3);
        FreezeManifest written = FreezeManifest.Create(1, TimeSpan.FromSeconds(60), [V4, V6], []) with
        {
            PeerSegments = FreezeManifest.BoundedPeerSegments([V4, V6],
                new Dictionary<ConnectionKey, PeerSegment> { [V4] = new(v4, 60), [V6] = new(v6, 9000) }),
        };
        written.Write(_images.Path);

        using (JsonDocument json = JsonDocument.Parse(File.ReadAllBytes(ManifestPath)))
        {
            JsonElement segment = json.RootElement.GetProperty("peerSegments").GetProperty(V4Text);
            Assert.Equal(Convert.ToBase64String(v4), segment.GetProperty("packet").GetString());
            Assert.Equal(60, segment.GetProperty("ipLength").GetInt32());
        }
        Dictionary<ConnectionKey, PeerSegment> read = FreezeManifest.Read(_images.Path).PeerSegmentKeys();
        Assert.Equal(2, read.Count);
        Assert.Equal(v4, read[V4].Packet);
        Assert.Equal(60u, read[V4].IpLength);
        Assert.Equal(v6, read[V6].Packet);
        Assert.Equal(9000u, read[V6].IpLength);
    }

    [Fact]
    public void Local_segments_round_trip_beside_the_peer_segments_each_kept_apart()
    {
        byte[] peer = Bytes(60), local = Bytes(1500, 5);
        FreezeManifest written = FreezeManifest.Create(1, TimeSpan.FromSeconds(60), [V4, V6], []) with
        {
            PeerSegments = FreezeManifest.BoundedPeerSegments([V4], new Dictionary<ConnectionKey, PeerSegment> { [V4] = new(peer, 60) }),
            LocalSegments = FreezeManifest.BoundedPeerSegments([V4, V6],
                new Dictionary<ConnectionKey, PeerSegment> { [V4] = new(local, 1500), [V6] = new(Bytes(80), 80) }),
        };
        written.Write(_images.Path);

        using (JsonDocument json = JsonDocument.Parse(File.ReadAllBytes(ManifestPath)))
            Assert.Equal(Convert.ToBase64String(local), json.RootElement.GetProperty("localSegments").GetProperty(V4Text).GetProperty("packet").GetString());
        FreezeManifest read = FreezeManifest.Read(_images.Path);
        Assert.Equal(peer, Assert.Single(read.PeerSegmentKeys()).Value.Packet);
        Dictionary<ConnectionKey, PeerSegment> locals = read.LocalSegmentKeys();
        Assert.Equal(2, locals.Count);
        Assert.Equal(local, locals[V4].Packet);
        Assert.Equal(1500u, locals[V4].IpLength);
    }

    [Fact]
    public void Local_segments_are_refused_as_peer_segments_are_naming_them()
    {
        File.WriteAllText(ManifestPath,
            $$"""{ "version": 1, "connections": ["{{V4Text}}"], "endpoints": [], "localSegments": { "{{V4Text}}": { "packet": "{{Convert.ToBase64String(Bytes(PeerSegment.MaxBytes + 1))}}", "ipLength": 9000 } } }""");
        string message = Assert.Throws<InvalidDataException>(() => FreezeManifest.Read(_images.Path)).Message;
        Assert.Contains("the local segment of " + V4Text, message);

        int count = FreezeManifest.MaximumPeerSegmentBytes / PeerSegment.MaxBytes + 1;
        string entries = string.Join(", ", Enumerable.Range(0, count).Select(i =>
            $"\"198.18.{i / 250}.{i % 250 + 1}:8080 -> 198.19.0.1:40000\": {{ \"packet\": \"{Convert.ToBase64String(Bytes(PeerSegment.MaxBytes))}\", \"ipLength\": {PeerSegment.MaxBytes} }}"));
        File.WriteAllText(ManifestPath, $$"""{ "version": 1, "connections": [], "endpoints": [], "localSegments": { {{entries}} } }""");
        Assert.Contains("its local segments hold more than 8 MiB",
            Assert.Throws<InvalidDataException>(() => FreezeManifest.Read(_images.Path)).Message);
    }

    [Fact]
    public void A_manifest_without_peer_segments_has_none()
    {
        FreezeManifest.Create(1, TimeSpan.FromSeconds(60), [V4], []).Write(_images.Path);
        FreezeManifest read = FreezeManifest.Read(_images.Path);
        Assert.Null(read.PeerSegments);
        Assert.Empty(read.PeerSegmentKeys());
    }

    [Fact]
    public void Segments_of_connections_the_manifest_does_not_list_are_ignored()
    {
        const string other = "198.18.0.1:9999 -> 198.18.0.2:40000";
        File.WriteAllText(ManifestPath,
            $$"""{ "version": 1, "connections": ["{{V4Text}}"], "endpoints": [], "peerSegments": { "{{other}}": { "packet": "{{Convert.ToBase64String(Bytes(60))}}", "ipLength": 60 } } }""");
        FreezeManifest read = FreezeManifest.Read(_images.Path);
        Assert.Single(read.PeerSegments!);
        Assert.Empty(read.PeerSegmentKeys());
    }

    [Fact]
    public void The_writer_keeps_segments_in_connection_order_within_the_byte_budget()
    {
        int count = FreezeManifest.MaximumPeerSegmentBytes / PeerSegment.MaxBytes + 10;
        ConnectionKey[] keys = Enumerable.Range(0, count)
            .Select(i => ConnectionKey.Parse($"198.18.{i / 250}.{i % 250 + 1}:8080", "198.19.0.1:40000")).ToArray();
        var segments = keys.ToDictionary(k => k, _ => new PeerSegment(Bytes(PeerSegment.MaxBytes), PeerSegment.MaxBytes));

        Dictionary<string, PeerSegment> kept = FreezeManifest.BoundedPeerSegments(keys, segments);

        Assert.Equal(FreezeManifest.MaximumPeerSegmentBytes / PeerSegment.MaxBytes, kept.Count);
        Assert.Equal(keys.Take(kept.Count).Select(k => k.ToString()), kept.Keys);
        Assert.True(kept.Values.Sum(s => (long)s.Packet.Length) <= FreezeManifest.MaximumPeerSegmentBytes);

        // The whole manifest stays far below what its reader accepts, and reads back.
        FreezeManifest manifest = FreezeManifest.Create(1, TimeSpan.FromSeconds(60), keys, []) with { PeerSegments = kept };
        Assert.True(manifest.ToJson().Length < FreezeManifest.MaximumFileSize / 4);
        manifest.Write(_images.Path);
        Assert.Equal(kept.Count, FreezeManifest.Read(_images.Path).PeerSegmentKeys().Count);
    }

    [Fact]
    public void The_writer_leaves_out_segments_the_reader_would_refuse()
    {
        Dictionary<string, PeerSegment> kept = FreezeManifest.BoundedPeerSegments([V4, V6], new Dictionary<ConnectionKey, PeerSegment>
        {
            [V4] = new(Bytes(PeerSegment.MaxBytes + 1), 70_000),
            [V6] = new(Bytes(100), 50),
        });
        Assert.Empty(kept);
    }

    [Theory]
    [InlineData("\"not base64!\"")]
    [InlineData("\"AAA\"")]
    [InlineData("\"AAAA=AAA\"")]
    [InlineData("42")]
    [InlineData("[1, 2, 3]")]
    public void Malformed_base64_is_refused_as_corrupt(string packet)
    {
        string message = ReadError($$"""{ "{{V4Text}}": { "packet": {{packet}}, "ipLength": 60 } }""");
        Assert.StartsWith($"{FreezeManifest.FileName} is corrupt", message);
    }

    [Fact]
    public void An_oversized_segment_is_refused()
    {
        string packet = Convert.ToBase64String(Bytes(PeerSegment.MaxBytes + 1));
        string message = ReadError($$"""{ "{{V4Text}}": { "packet": "{{packet}}", "ipLength": 9000 } }""");
        Assert.StartsWith($"{FreezeManifest.FileName} is corrupt", message);
        Assert.Contains("more than the 2,048 the programs keep", message);
    }

    [Theory]
    [InlineData("""{ "packet": "AAAA", "ipLength": 2 }""", "less than its 3 packet bytes")]
    [InlineData("""{ "packet": "AAAA" }""", "less than its 3 packet bytes")]
    [InlineData("""{ "packet": "AAAA", "ipLength": 65536 }""", "more than any IP packet")]
    [InlineData("""{ "packet": "", "ipLength": 60 }""", "an empty packet")]
    [InlineData("""{ "ipLength": 60 }""", "no packet")]
    [InlineData("""{ "packet": null, "ipLength": 60 }""", "no packet")]
    [InlineData("null", "null instead of a segment")]
    public void A_segment_the_programs_could_not_have_kept_is_refused(string segment, string reason)
    {
        string message = ReadError($$"""{ "{{V4Text}}": {{segment}} }""");
        Assert.StartsWith($"{FreezeManifest.FileName} is corrupt: the peer segment of {V4Text} has ", message);
        Assert.Contains(reason, message);
    }

    [Fact]
    public void A_segment_keyed_by_something_other_than_a_connection_is_refused()
    {
        string message = ReadError("""{ "198.18.0.1:80": { "packet": "AAAA", "ipLength": 3 } }""");
        Assert.StartsWith($"{FreezeManifest.FileName} is corrupt", message);
        Assert.Contains("not a connection", message);
    }

    [Fact]
    public void More_segment_bytes_than_the_budget_are_refused()
    {
        string packet = Convert.ToBase64String(Bytes(PeerSegment.MaxBytes));
        int count = FreezeManifest.MaximumPeerSegmentBytes / PeerSegment.MaxBytes + 1;
        string segments = "{" + string.Join(",", Enumerable.Range(0, count).Select(i =>
            $$"""  "198.18.{{i / 250}}.{{i % 250 + 1}}:8080 -> 198.19.0.1:40000": { "packet": "{{packet}}", "ipLength": 2048 }""")) + "}";
        string message = ReadError(segments);
        Assert.StartsWith($"{FreezeManifest.FileName} is corrupt", message);
        Assert.Contains("more than 8 MiB", message);
    }

    [Theory]
    [InlineData("[]")]
    [InlineData("\"x\"")]
    [InlineData("{ \"a\": 1 }")]
    public void Peer_segments_of_the_wrong_kind_are_refused_as_corrupt(string segments)
        => Assert.StartsWith($"{FreezeManifest.FileName} is corrupt", ReadError(segments));
}
