using System.Net;
using CsCheck;
using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// The allocation-free reading and writing of IPv4 keys ("A.B.C.D:P -> A.B.C.D:P", what the
/// manifest holds) means exactly what the general parser and formatter mean, for valid text and
/// for valid text with random edits.
/// </summary>
public sealed class KeyTextFastPathTests
{
    private const long Iterations = 20_000;

    private static readonly Gen<IPEndPoint> V4Endpoint = Gen.Select(Gen.Byte.Array[4].Select(b => new IPAddress(b)), Gen.Int[1, 65535], (a, p) => new IPEndPoint(a, p));

    private static readonly Gen<ConnectionKey> V4Key = Gen.Select(V4Endpoint, V4Endpoint, (l, r) => new ConnectionKey(l, r));

    [Fact]
    public void An_ipv4_key_formats_as_the_general_formatter_does_and_parses_back_to_itself()
        => V4Key.Sample(key =>
        {
            string text = key.ToString();
            Assert.Equal($"{TcpEndpointText.Format(key.Local)} -> {TcpEndpointText.Format(key.Remote)}", text);
            Assert.Equal(key, ConnectionKey.Parse(text));
        }, iter: Iterations);

    [Fact]
    public void Edited_ipv4_key_text_reads_as_the_general_parser_reads_it()
        => HostileText.Bounded(() => HostileText.Mutated(V4Key.Select(k => k.ToString())).Sample(text =>
        {
            // The general reading: "->" is a separator like a space, and exactly two endpoints remain.
            string[] parts = text.Replace("->", " ", StringComparison.Ordinal).Split(' ', StringSplitOptions.RemoveEmptyEntries);
            bool generalParsed = ConnectionKey.TryParse(parts.Length == 2 ? parts[0] : "", parts.Length == 2 ? parts[1] : "", out ConnectionKey general, out _);
            bool parsed = ConnectionKey.TryParse(text, null, out ConnectionKey key);
            Assert.Equal(generalParsed, parsed);
            Assert.Equal(general, key);
        }, iter: Iterations));

    [Theory]
    [InlineData("198.18.0.1:8080 -> 198.18.0.2:40000")]
    [InlineData("  198.18.0.1:8080   ->   198.18.0.2:40000 ")]
    [InlineData("198.18.0.1:8080 198.18.0.2:40000")]
    [InlineData("198.18.0.1:08080 -> 198.18.0.2:40000")]
    public void Other_spellings_still_parse_to_the_same_key(string text)
        => Assert.Equal(new ConnectionKey(IPEndPoint.Parse("198.18.0.1:8080"), IPEndPoint.Parse("198.18.0.2:40000")), ConnectionKey.Parse(text));

    [Theory]
    [InlineData("198.18.0.01:8080 -> 198.18.0.2:40000", "leading zero")]
    [InlineData("198.18.0.1:0 -> 198.18.0.2:40000", "is not allowed")]
    [InlineData("198.18.0.256:80 -> 198.18.0.2:40000", "dotted-quad")]
    [InlineData("198.18.0.1:65536 -> 198.18.0.2:40000", "out of range")]
    public void Text_the_fast_path_does_not_take_is_still_refused_with_its_reason(string text, string reason)
        => Assert.Contains(reason, Assert.Throws<FormatException>(() => ConnectionKey.Parse(text)).Message);

    [Fact]
    public void A_manifest_copy_with_other_connections_never_returns_the_keys_of_the_original()
    {
        var first = new ConnectionKey(IPEndPoint.Parse("198.18.0.1:8080"), IPEndPoint.Parse("198.18.0.2:40000"));
        var second = new ConnectionKey(IPEndPoint.Parse("198.18.0.1:8080"), IPEndPoint.Parse("198.18.0.3:40001"));
        FreezeManifest manifest = FreezeManifest.Create(1, TimeSpan.FromSeconds(5), [first], []);
        Assert.Equal([first], manifest.ConnectionKeys());
        FreezeManifest copy = manifest with { Connections = [.. manifest.Connections, second.ToString()] };
        Assert.Equal([first, second], copy.ConnectionKeys());
        Assert.Equal([first], manifest.ConnectionKeys());
        Assert.Same(manifest.ConnectionKeys(), manifest.ConnectionKeys());
    }
}
