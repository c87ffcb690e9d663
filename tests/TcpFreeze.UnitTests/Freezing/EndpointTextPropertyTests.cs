using System.Globalization;
using System.Net;
using System.Net.Sockets;
using CsCheck;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// Endpoint and connection-key text under hostile input: random strings and valid text
/// with random edits. The parsers refuse with a <see cref="FormatException"/> that says
/// why, never throw anything else, never hang, and what they accept formats back to
/// text that parses to the same value and means what a reader of the text would think.
/// </summary>
public sealed class EndpointTextPropertyTests
{
    private const long Iterations = 20_000;

    private static readonly Gen<IPEndPoint> ValidEndpoint = Gen.Select(
        Gen.Frequency(
            (2, Gen.Byte.Array[4].Select(b => new IPAddress(b))),
            (2, Gen.Byte.Array[16].Select(b => new IPAddress(b))),
            (1, Gen.OneOf(IPAddress.Any, IPAddress.IPv6Any, IPAddress.Parse("::ffff:198.18.0.1"), IPAddress.Parse("2001:db8::1")))),
        Gen.Int[1, 65535], (a, p) => new IPEndPoint(a, p));

    private static readonly Gen<string> EndpointText = Gen.Frequency(
        (1, HostileText.Text),
        (3, HostileText.Mutated(ValidEndpoint.Select(TcpEndpointText.Format))));

    private static readonly Gen<string> ConnectionText = Gen.Frequency(
        (1, HostileText.Text),
        (3, HostileText.Mutated(Gen.Select(ValidEndpoint, ValidEndpoint, Gen.OneOf(" -> ", " ", "->", "  ->  "),
            (l, r, separator) => TcpEndpointText.Format(l) + separator + TcpEndpointText.Format(r)))));

    [Fact]
    public void Endpoint_text_is_refused_with_a_reason_or_round_trips_never_anything_else()
        => HostileText.Bounded(() => EndpointText.Sample(text =>
        {
            foreach (bool allowPortZero in (ReadOnlySpan<bool>)[false, true])
            {
                if (!TcpEndpointText.TryParse(text, allowPortZero, out IPEndPoint? endpoint, out string? error))
                {
                    Assert.False(string.IsNullOrWhiteSpace(error));
                    Assert.Equal(error, Assert.Throws<FormatException>(() => TcpEndpointText.Parse(text, allowPortZero)).Message);
                    continue;
                }
                string formatted = TcpEndpointText.Format(endpoint);
                Assert.Equal(endpoint, TcpEndpointText.Parse(formatted, allowPortZero));
                Assert.Equal(formatted, TcpEndpointText.Format(TcpEndpointText.Parse(formatted, allowPortZero)));
                Assert.InRange(endpoint.Port, allowPortZero ? 0 : 1, 65535);
            }
        }, iter: Iterations));

    [Fact]
    public void An_accepted_ipv4_endpoint_means_its_decimal_dotted_quad()
        => HostileText.Bounded(() => EndpointText.Sample(text =>
        {
            if (!TcpEndpointText.TryParse(text, allowPortZero: true, out IPEndPoint? endpoint, out _)
                || endpoint.AddressFamily != AddressFamily.InterNetwork)
                return;
            // "010.1.1.1" must not turn into 8.1.1.1 (octal), as inet_aton would read it.
            string host = text.Trim()[..text.Trim().LastIndexOf(':')];
            byte[] expected = host.Split('.').Select(part => byte.Parse(part, NumberStyles.None, CultureInfo.InvariantCulture)).ToArray();
            Assert.Equal(expected, endpoint.Address.GetAddressBytes());
        }, iter: Iterations));

    [Fact]
    public void Connection_key_text_is_refused_with_a_format_exception_or_round_trips()
        => HostileText.Bounded(() => ConnectionText.Sample(text =>
        {
            ConnectionKey key;
            try
            {
                key = ConnectionKey.Parse(text);
            }
            catch (FormatException e)
            {
                Assert.False(string.IsNullOrWhiteSpace(e.Message));
                return;
            }
            Assert.Equal(key, ConnectionKey.Parse(key.ToString()));
            Assert.Equal(key, ConnectionKey.Parse(TcpEndpointText.Format(key.Local), TcpEndpointText.Format(key.Remote)));
            Assert.NotEqual(0, key.Local.Port);
            Assert.NotEqual(0, key.Remote.Port);
        }, iter: Iterations));

    [Fact]
    public void Endpoint_key_text_is_refused_with_a_format_exception_or_round_trips()
        => HostileText.Bounded(() => EndpointText.Sample(text =>
        {
            EndpointKey key;
            try
            {
                key = EndpointKey.Parse(text);
            }
            catch (FormatException e)
            {
                Assert.False(string.IsNullOrWhiteSpace(e.Message));
                return;
            }
            Assert.Equal(key, EndpointKey.Parse(key.ToString()));
        }, iter: Iterations));
}
