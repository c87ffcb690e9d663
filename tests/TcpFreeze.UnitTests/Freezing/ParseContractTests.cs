namespace TcpFreeze.Tests;

/// <summary>Parse methods throw FormatException, as documented, and TryParse never throws (issue 22, item 4).</summary>
public class ParseContractTests
{
    [Theory]
    [InlineData("nonsense")]
    [InlineData("198.18.0.1:80")]
    [InlineData("198.18.0.1:80 [2001:db8::1]:80")]
    [InlineData("198.18.0.1:0 198.18.0.2:80")]
    public void A_malformed_connection_throws_format_exception_and_try_parse_says_false(string text)
    {
        Assert.Throws<FormatException>(() => ConnectionKey.Parse(text));
        Assert.False(ConnectionKey.TryParse(text, null, out _));
    }

    [Theory]
    [InlineData("nonsense")]
    [InlineData("198.18.0.1")]
    [InlineData("198.18.0.1:99999")]
    public void A_malformed_endpoint_throws_format_exception_and_try_parse_says_false(string text)
    {
        Assert.Throws<FormatException>(() => EndpointKey.Parse(text));
        Assert.False(EndpointKey.TryParse(text, null, out _));
    }

    [Fact]
    public void A_null_text_is_an_argument_null_exception()
    {
        Assert.Throws<ArgumentNullException>(() => ConnectionKey.Parse(null!));
        Assert.Throws<ArgumentNullException>(() => EndpointKey.Parse(null!));
    }
}
