using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace TcpFreeze;

/// <summary>
/// A local endpoint (address and port) whose every TCP segment is frozen, new SYNs
/// included. The any-address (0.0.0.0 or ::) matches every local address of its
/// family. Layout: <c>struct tf_endpoint_key</c> (20 bytes: family, padding,
/// port in network byte order, 16-byte address).
/// </summary>
/// <remarks>Thread safety: an immutable value; safe on any thread. Parse and TryParse are pure.</remarks>
[StructLayout(LayoutKind.Sequential, Size = 20)]
public readonly struct EndpointKey : IEquatable<EndpointKey>, IParsable<EndpointKey>, ISpanFormattable
{
    /// <summary>The size of the key in bytes (sizeof(struct tf_endpoint_key)).</summary>
    public const int Size = 20;

    private readonly byte _family;
    private readonly byte _pad;
    private readonly ushort _port; // network byte order
    private readonly AddressBytes _address;

    /// <summary>Builds an endpoint key (IPv4-mapped IPv6 becomes IPv4).</summary>
    /// <exception cref="ArgumentException">The port is 0 or the address is not IP.</exception>
    public EndpointKey(IPEndPoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        if (endpoint.Port == 0)
            throw new ArgumentException($"A frozen endpoint needs a non-zero port; got {TcpEndpointText.Format(endpoint)}.");
        IPAddress address = TcpEndpointText.Normalize(endpoint.Address);
        _family = AddressFamilies.ToKernel(address.AddressFamily);
        _port = ConnectionKey.ToNetwork(endpoint.Port);
        _address = AddressBytes.From(address);
    }

    /// <summary>IPv4 or IPv6.</summary>
    public AddressFamily AddressFamily => AddressFamilies.FromKernel(_family);

    /// <summary>The endpoint.</summary>
    public IPEndPoint Endpoint => new(_address.ToAddress(_family), ConnectionKey.FromNetwork(_port));

    /// <summary>Whether the address is the any-address of its family.</summary>
    public bool IsAnyAddress => ((ReadOnlySpan<byte>)_address).IndexOfAnyExcept((byte)0) < 0;

    /// <summary>
    /// Parses "ADDRESS:PORT", numeric: <c>198.18.0.1:8080</c> for IPv4, <c>[2001:db8::1]:8080</c> for IPv6 (no host
    /// names, zone ids, shortened or zero-padded IPv4 forms).
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is null.</exception>
    /// <exception cref="FormatException">The text is not an address and a port; the message says what is wrong.</exception>
    public static EndpointKey Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        IPEndPoint endpoint = TcpEndpointText.Parse(text);
        return new EndpointKey(endpoint);
    }

    /// <summary>"ADDRESS:PORT".</summary>
    public override string ToString() => _family == 0 ? "(empty)" : TcpEndpointText.Format(Endpoint);

    /// <inheritdoc cref="Parse(string)"/>
    public static EndpointKey Parse(string s, IFormatProvider? provider) => Parse(s);

    /// <summary>Parses without throwing (the text forms of <see cref="Parse(string)"/>).</summary>
    public static bool TryParse([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] string? s, IFormatProvider? provider, out EndpointKey result)
        => KeyText.TryParse(s, Parse, out result);

    /// <summary>The text of <see cref="ToString()"/>; there are no format strings.</summary>
    public string ToString(string? format, IFormatProvider? formatProvider) => ToString();

    /// <inheritdoc />
    public bool TryFormat(Span<char> destination, out int charsWritten, ReadOnlySpan<char> format, IFormatProvider? provider)
        => KeyText.TryFormat(ToString(), destination, out charsWritten);

    /// <inheritdoc />
    public bool Equals(EndpointKey other) => AsBytes(in this).SequenceEqual(AsBytes(in other));

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is EndpointKey other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.AddBytes(AsBytes(in this));
        return hash.ToHashCode();
    }

    /// <summary>Equality.</summary>
    public static bool operator ==(EndpointKey left, EndpointKey right) => left.Equals(right);

    /// <summary>Inequality.</summary>
    public static bool operator !=(EndpointKey left, EndpointKey right) => !left.Equals(right);

    private static ReadOnlySpan<byte> AsBytes(in EndpointKey key) => MemoryMarshal.AsBytes(new ReadOnlySpan<EndpointKey>(in key));
}
