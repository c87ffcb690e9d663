using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace TcpFreeze;

/// <summary>
/// Parses and formats TCP endpoints as text: <c>198.18.0.1:8080</c> for IPv4 and
/// <c>[2001:db8::1]:8080</c> for IPv6. Only numeric addresses are accepted (no host
/// names, no IPv6 zone ids, no shortened IPv4 forms such as <c>10.1</c>, no leading zeros
/// such as <c>010.0.0.1</c> that other tools read as octal), because
/// the kernel matches exact addresses.
/// </summary>
/// <remarks>Thread safety: stateless and pure; safe on any thread.</remarks>
internal static class TcpEndpointText
{
    /// <summary>Parses <paramref name="text"/>; throws <see cref="FormatException"/> saying what is wrong.</summary>
    /// <param name="text">The endpoint text.</param>
    /// <param name="allowPortZero">Whether port 0 is acceptable.</param>
    public static IPEndPoint Parse(string text, bool allowPortZero = false)
        => TryParse(text, allowPortZero, out IPEndPoint? endpoint, out string? error) ? endpoint : throw new FormatException(error);

    /// <summary>Parses <paramref name="text"/>; on failure <paramref name="error"/> says what is wrong.</summary>
    public static bool TryParse(string? text, bool allowPortZero, [NotNullWhen(true)] out IPEndPoint? endpoint, [NotNullWhen(false)] out string? error)
    {
        endpoint = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "The endpoint is empty; write ADDRESS:PORT, e.g. 198.18.0.1:8080 or [2001:db8::1]:8080.";
            return false;
        }
        text = text.Trim();
        string host, port;
        if (text.StartsWith('['))
        {
            int close = text.IndexOf(']');
            if (close < 0 || close + 1 >= text.Length || text[close + 1] != ':')
            {
                error = $"'{text}' is not a valid endpoint: an IPv6 endpoint is written [ADDRESS]:PORT, e.g. [2001:db8::1]:8080.";
                return false;
            }
            host = text[1..close];
            port = text[(close + 2)..];
            if (!IPAddress.TryParse(host, out IPAddress? v6) || v6.AddressFamily != AddressFamily.InterNetworkV6 || host.Contains('%'))
            {
                error = $"'{host}' in '{text}' is not an IPv6 address (without a zone id).";
                return false;
            }
            return TryPort(text, port, allowPortZero, v6, out endpoint, out error);
        }

        int colon = text.LastIndexOf(':');
        if (colon < 0)
        {
            error = $"'{text}' has no port; write ADDRESS:PORT, e.g. 198.18.0.1:8080.";
            return false;
        }
        host = text[..colon];
        port = text[(colon + 1)..];
        if (host.Contains(':'))
        {
            error = $"'{text}' looks like an IPv6 address without brackets; write [ADDRESS]:PORT, e.g. [2001:db8::1]:8080.";
            return false;
        }
        if (!IsDottedQuad(host))
        {
            error = $"'{host}' in '{text}' is not an IPv4 address in dotted-quad form (host names are not accepted).";
            return false;
        }
        // IPAddress.Parse, like inet_aton, reads "010" as octal 8; a reader of the text means 10. Refuse the doubt.
        string[] parts = host.Split('.');
        if (parts.Any(p => p.Length > 1 && p[0] == '0'))
        {
            string plain = string.Join('.', parts.Select(p => int.Parse(p, NumberStyles.None, CultureInfo.InvariantCulture)));
            error = $"'{host}' in '{text}' has a part with a leading zero, which some tools read as octal; write it in plain decimal ({plain}).";
            return false;
        }
        var v4 = new IPAddress(parts.Select(p => byte.Parse(p, NumberStyles.None, CultureInfo.InvariantCulture)).ToArray());
        return TryPort(text, port, allowPortZero, v4, out endpoint, out error);
    }

    /// <summary>Formats an endpoint the way <see cref="Parse"/> reads it.</summary>
    public static string Format(IPEndPoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        return Format(endpoint.Address, endpoint.Port);
    }

    /// <summary>Formats an address and port the way <see cref="Parse"/> reads them.</summary>
    public static string Format(IPAddress address, int port)
        => address.AddressFamily == AddressFamily.InterNetworkV6
            ? $"[{address}]:{port.ToString(CultureInfo.InvariantCulture)}"
            : $"{address}:{port.ToString(CultureInfo.InvariantCulture)}";

    private static bool TryPort(string text, string port, bool allowPortZero, IPAddress address, [NotNullWhen(true)] out IPEndPoint? endpoint, [NotNullWhen(false)] out string? error)
    {
        endpoint = null;
        if (port.Length == 0 || port.Length > 5 || !port.All(char.IsAsciiDigit))
        {
            error = $"'{port}' in '{text}' is not a port number (0-65535).";
            return false;
        }
        int value = int.Parse(port, NumberStyles.None, CultureInfo.InvariantCulture);
        if (value > 65535)
        {
            error = $"port {value} in '{text}' is out of range (1-65535).";
            return false;
        }
        if (value == 0 && !allowPortZero)
        {
            error = $"port 0 in '{text}' is not allowed here: a TCP connection always has a non-zero port.";
            return false;
        }
        endpoint = new IPEndPoint(address, value);
        error = null;
        return true;
    }

    private static bool IsDottedQuad(string host)
    {
        string[] parts = host.Split('.');
        return parts.Length == 4 && parts.All(p => p.Length is >= 1 and <= 3 && p.All(char.IsAsciiDigit) && int.Parse(p, NumberStyles.None, CultureInfo.InvariantCulture) <= 255);
    }

    /// <summary>
    /// Turns IPv4-mapped IPv6 addresses (<c>::ffff:198.18.0.1</c>) into plain IPv4: on
    /// the wire such a connection is IPv4, and that is what the kernel programs see.
    /// </summary>
    public static IPAddress Normalize(IPAddress address)
        => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
}
