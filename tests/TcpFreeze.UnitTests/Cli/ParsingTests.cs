using System.Net;
using System.Net.Sockets;

namespace TcpFreeze.Tests;

/// <summary>Endpoint and key text: round trips and every malformed form, with messages that say what is wrong.</summary>
public sealed class ParsingTests
{
    [Theory]
    [InlineData("198.18.0.1:8080")]
    [InlineData("0.0.0.0:1")]
    [InlineData("255.255.255.255:65535")]
    [InlineData("[2001:db8::1]:8080")]
    [InlineData("[::]:443")]
    [InlineData("[2001:db8:0:1:2:3:4:5]:1")]
    public void Endpoint_text_round_trips(string text)
    {
        IPEndPoint endpoint = TcpEndpointText.Parse(text);
        Assert.Equal(text, TcpEndpointText.Format(endpoint));
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("198.18.0.1", "no port")]
    [InlineData("198.18.0.1:", "not a port number")]
    [InlineData("198.18.0.1:http", "not a port number")]
    [InlineData("198.18.0.1:65536", "out of range")]
    [InlineData("198.18.0.1:99999999", "not a port number")]
    [InlineData("198.18.0.1:-1", "not a port number")]
    [InlineData("198.18.0.1:0", "port 0")]
    [InlineData("198.18.1:80", "dotted-quad")]
    [InlineData("256.1.1.1:80", "dotted-quad")]
    [InlineData("010.1.1.1:80", "leading zero")]
    [InlineData("198.18.0.01:80", "plain decimal (198.18.0.1)")]
    [InlineData("example.org:80", "dotted-quad")]
    [InlineData("2001:db8::1:80", "without brackets")]
    [InlineData("[2001:db8::1]80", "[ADDRESS]:PORT")]
    [InlineData("[2001:db8::1", "[ADDRESS]:PORT")]
    [InlineData("[198.18.0.1]:80", "not an IPv6 address")]
    [InlineData("[fe80::1%eth0]:80", "zone")]
    public void Malformed_endpoint_text_is_refused_with_a_reason(string text, string reason)
    {
        var e = Assert.Throws<FormatException>(() => TcpEndpointText.Parse(text));
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void Port_zero_is_accepted_only_where_asked_for()
        => Assert.Equal(0, TcpEndpointText.Parse("198.18.0.1:0", allowPortZero: true).Port);

    [Fact]
    public void Connection_key_round_trips_through_text_and_endpoints()
    {
        var key = ConnectionKey.Parse("[2001:db8::1]:8080", "[2001:db8::2]:50000");
        Assert.Equal("[2001:db8::1]:8080 -> [2001:db8::2]:50000", key.ToString());
        Assert.Equal(key, ConnectionKey.Parse(key.ToString()));
        Assert.Equal(key, new ConnectionKey(key.Local, key.Remote));
        Assert.Equal(AddressFamily.InterNetworkV6, key.AddressFamily);
        Assert.Equal(key, key.Reversed().Reversed());
        Assert.NotEqual(key, key.Reversed());
        Assert.Equal(key.GetHashCode(), ConnectionKey.Parse("[2001:db8::1]:8080 [2001:db8::2]:50000").GetHashCode());
    }

    [Fact]
    public void Ipv4_mapped_ipv6_addresses_become_ipv4_so_they_match_the_wire()
    {
        var mapped = new ConnectionKey(new IPEndPoint(IPAddress.Parse("::ffff:198.18.0.1"), 80), new IPEndPoint(IPAddress.Parse("::ffff:198.18.0.2"), 5000));
        Assert.Equal(ConnectionKey.Parse("198.18.0.1:80", "198.18.0.2:5000"), mapped);
        Assert.Equal(AddressFamily.InterNetwork, mapped.AddressFamily);
        Assert.Equal(EndpointKey.Parse("198.18.0.1:80"), new EndpointKey(new IPEndPoint(IPAddress.Parse("::ffff:198.18.0.1"), 80)));
    }

    [Fact]
    public void Mixed_families_in_one_key_are_refused()
    {
        var e = Assert.Throws<FormatException>(() => ConnectionKey.Parse("198.18.0.1:80", "[2001:db8::2]:5000"));
        Assert.Contains("mix IPv4 and IPv6", e.Message);
    }

    [Fact]
    public void Port_zero_in_a_connection_or_endpoint_is_refused()
    {
        Assert.Contains("port 0", Assert.Throws<FormatException>(() => ConnectionKey.Parse("198.18.0.1:0", "198.18.0.2:5000")).Message);
        Assert.Throws<ArgumentException>(() => new ConnectionKey(new IPEndPoint(IPAddress.Loopback, 0), new IPEndPoint(IPAddress.Loopback, 1)));
        Assert.Throws<ArgumentException>(() => new EndpointKey(new IPEndPoint(IPAddress.Any, 0)));
    }

    [Theory]
    [InlineData("198.18.0.1:80")]
    [InlineData("198.18.0.1:80 198.18.0.2:1 198.18.0.3:2")]
    [InlineData("garbage")]
    public void Connection_text_needs_exactly_two_endpoints(string text)
        => Assert.Throws<FormatException>(() => ConnectionKey.Parse(text));

    [Fact]
    public void Any_address_endpoints_are_recognised()
    {
        Assert.True(EndpointKey.Parse("0.0.0.0:80").IsAnyAddress);
        Assert.True(EndpointKey.Parse("[::]:80").IsAnyAddress);
        Assert.False(EndpointKey.Parse("198.18.0.1:80").IsAnyAddress);
        Assert.Equal("[::]:80", EndpointKey.Parse("[::]:80").ToString());
    }
}
