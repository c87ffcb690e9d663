using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace TcpFreeze;

/// <summary>
/// One TCP connection seen from this host (local address and port, remote address
/// and port), IPv4 or IPv6. Its memory layout is exactly <c>struct tf_conn_key</c> in
/// bpf/tcpfreeze.h (40 bytes: family, 3 bytes padding, local and remote port in
/// network byte order, two 16-byte addresses), so it is written to the kernel map as
/// it is; a test checks this against the BTF of the compiled program.
/// </summary>
/// <remarks>Thread safety: an immutable value; safe on any thread. Parse and TryParse are pure.</remarks>
[StructLayout(LayoutKind.Sequential, Size = 40)]
public readonly struct ConnectionKey : IEquatable<ConnectionKey>, IParsable<ConnectionKey>, ISpanFormattable
{
    /// <summary>The size of the key in bytes (sizeof(struct tf_conn_key)).</summary>
    public const int Size = 40;

    private readonly byte _family;
    private readonly byte _pad0;
    private readonly ushort _pad1;
    private readonly ushort _localPort;   // network byte order
    private readonly ushort _remotePort;  // network byte order
    private readonly AddressBytes _localAddress;
    private readonly AddressBytes _remoteAddress;

    /// <summary>Builds a key from the local and remote endpoints (IPv4-mapped IPv6 becomes IPv4).</summary>
    /// <exception cref="ArgumentException">The families differ, a port is 0, or an address is not IP.</exception>
    public ConnectionKey(IPEndPoint local, IPEndPoint remote)
    {
        ArgumentNullException.ThrowIfNull(local);
        ArgumentNullException.ThrowIfNull(remote);
        IPAddress localAddress = TcpEndpointText.Normalize(local.Address);
        IPAddress remoteAddress = TcpEndpointText.Normalize(remote.Address);
        if (localAddress.AddressFamily != remoteAddress.AddressFamily)
            throw new ArgumentException(
                $"A connection joins two endpoints of one family, but {TcpEndpointText.Format(local)} and {TcpEndpointText.Format(remote)} mix IPv4 and IPv6.");
        if (local.Port == 0 || remote.Port == 0)
            throw new ArgumentException(
                $"A TCP connection has non-zero ports on both sides; got {TcpEndpointText.Format(local)} and {TcpEndpointText.Format(remote)}.");
        _family = AddressFamilies.ToKernel(localAddress.AddressFamily);
        _localPort = ToNetwork(local.Port);
        _remotePort = ToNetwork(remote.Port);
        _localAddress = AddressBytes.From(localAddress);
        _remoteAddress = AddressBytes.From(remoteAddress);
    }

    /// <summary>IPv4 or IPv6.</summary>
    public AddressFamily AddressFamily => AddressFamilies.FromKernel(_family);

    /// <summary>The endpoint of this host's socket.</summary>
    public IPEndPoint Local => new(_localAddress.ToAddress(_family), FromNetwork(_localPort));

    /// <summary>The peer's endpoint.</summary>
    public IPEndPoint Remote => new(_remoteAddress.ToAddress(_family), FromNetwork(_remotePort));

    /// <summary>The same connection as the peer sees it (local and remote swapped).</summary>
    public ConnectionKey Reversed() => new(Remote, Local);

    /// <summary>
    /// Parses "LOCAL REMOTE" or "LOCAL -> REMOTE", each endpoint numeric: <c>198.18.0.1:8080</c> for IPv4,
    /// <c>[2001:db8::1]:8080</c> for IPv6 (no host names, zone ids, shortened or zero-padded IPv4 forms).
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is null.</exception>
    /// <exception cref="FormatException">The text is not two endpoints, an endpoint is malformed, a port is 0, or the families differ; the message says which.</exception>
    public static ConnectionKey Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (TryParseIPv4(text, out ConnectionKey fast))
            return fast;
        string[] parts = text.Replace("->", " ", StringComparison.Ordinal).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length != 2)
            throw new FormatException($"'{text}' is not a connection; write LOCAL REMOTE, e.g. '198.18.0.1:8080 198.18.0.2:40000'.");
        return Parse(parts[0], parts[1]);
    }

    /// <summary>Parses a connection from its two endpoints.</summary>
    /// <exception cref="FormatException">An endpoint is malformed, a port is 0, or the families differ.</exception>
    public static ConnectionKey Parse(string local, string remote)
    {
        IPEndPoint l = TcpEndpointText.Parse(local);
        IPEndPoint r = TcpEndpointText.Parse(remote);
        try
        {
            return new ConnectionKey(l, r);
        }
        catch (ArgumentException e)
        {
            throw new FormatException(e.Message, e);
        }
    }

    /// <summary>Parses without throwing; <paramref name="error"/> says what is wrong.</summary>
    public static bool TryParse(string local, string remote, out ConnectionKey key, out string? error)
    {
        try
        {
            key = Parse(local, remote);
            error = null;
            return true;
        }
        catch (FormatException e)
        {
            key = default;
            error = e.Message;
            return false;
        }
    }

    /// <summary>"LOCAL -> REMOTE", e.g. "198.18.0.1:8080 -> 198.18.0.2:40000".</summary>
    public override string ToString()
    {
        if (_family != AddressFamilies.KernelIPv4)
            return _family == 0 ? "(empty)" : $"{TcpEndpointText.Format(Local)} -> {TcpEndpointText.Format(Remote)}";
        Span<char> text = stackalloc char[2 * IPv4Text.MaxEndpointLength + 4];
        int n = IPv4Text.FormatEndpoint(_localAddress, FromNetwork(_localPort), text);
        " -> ".CopyTo(text[n..]);
        n += 4;
        n += IPv4Text.FormatEndpoint(_remoteAddress, FromNetwork(_remotePort), text[n..]);
        return new string(text[..n]);
    }

    /// <summary>"A.B.C.D:P -> A.B.C.D:P" as <see cref="ToString()"/> writes it, read without allocating; false for any other form.</summary>
    private static bool TryParseIPv4(string text, out ConnectionKey key)
    {
        key = default;
        // Spaces only, as the general reading splits on them: other whitespace (a tab, a no-break space) is not a
        // separator there, so it must not be trimmed away here either (found by the property test, seed 4yn9jzMAQ8o2).
        ReadOnlySpan<char> span = text.AsSpan().Trim(' ');
        int arrow = span.IndexOf(" -> ", StringComparison.Ordinal);
        if (arrow < 0)
            return false;
        var local = new AddressBytes();
        var remote = new AddressBytes();
        if (!IPv4Text.TryParseEndpoint(span[..arrow], local, out int localPort)
            || !IPv4Text.TryParseEndpoint(span[(arrow + 4)..], remote, out int remotePort))
            return false;
        key = new ConnectionKey(AddressFamilies.KernelIPv4, ToNetwork(localPort), ToNetwork(remotePort), local, remote);
        return true;
    }

    private ConnectionKey(byte family, ushort localPort, ushort remotePort, AddressBytes localAddress, AddressBytes remoteAddress)
    {
        _family = family;
        _localPort = localPort;
        _remotePort = remotePort;
        _localAddress = localAddress;
        _remoteAddress = remoteAddress;
    }

    /// <inheritdoc cref="Parse(string)"/>
    public static ConnectionKey Parse(string s, IFormatProvider? provider) => Parse(s);

    /// <summary>Parses without throwing (the text forms of <see cref="Parse(string)"/>).</summary>
    public static bool TryParse([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] string? s, IFormatProvider? provider, out ConnectionKey result)
        => KeyText.TryParse(s, Parse, out result);

    /// <summary>The text of <see cref="ToString()"/>; there are no format strings.</summary>
    public string ToString(string? format, IFormatProvider? formatProvider) => ToString();

    /// <inheritdoc />
    public bool TryFormat(Span<char> destination, out int charsWritten, ReadOnlySpan<char> format, IFormatProvider? provider)
        => KeyText.TryFormat(ToString(), destination, out charsWritten);

    /// <inheritdoc />
    public bool Equals(ConnectionKey other) => AsBytes(in this).SequenceEqual(AsBytes(in other));

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is ConnectionKey other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.AddBytes(AsBytes(in this));
        return hash.ToHashCode();
    }

    /// <summary>Equality of the 4-tuples.</summary>
    public static bool operator ==(ConnectionKey left, ConnectionKey right) => left.Equals(right);

    /// <summary>Inequality of the 4-tuples.</summary>
    public static bool operator !=(ConnectionKey left, ConnectionKey right) => !left.Equals(right);

    internal static ReadOnlySpan<byte> AsBytes(in ConnectionKey key) => MemoryMarshal.AsBytes(new ReadOnlySpan<ConnectionKey>(in key));

    internal static ushort ToNetwork(int port) => BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness((ushort)port) : (ushort)port;

    internal static int FromNetwork(ushort port) => BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(port) : port;
}

/// <summary>A 16-byte address field; IPv4 uses the first four bytes.</summary>
[InlineArray(16)]
internal struct AddressBytes
{
    private byte _element;

    public static AddressBytes From(IPAddress address)
    {
        var bytes = new AddressBytes();
        if (!address.TryWriteBytes(bytes, out _))
            throw new ArgumentException($"'{address}' is not an IPv4 or IPv6 address.");
        return bytes;
    }

    public readonly IPAddress ToAddress(byte family)
    {
        ReadOnlySpan<byte> span = this;
        return family == AddressFamilies.KernelIPv4 ? new IPAddress(span[..4]) : new IPAddress(span);
    }
}

internal static class AddressFamilies
{
    public const byte KernelIPv4 = 4, KernelIPv6 = 6;

    public static byte ToKernel(AddressFamily family) => family switch
    {
        AddressFamily.InterNetwork => KernelIPv4,
        AddressFamily.InterNetworkV6 => KernelIPv6,
        _ => throw new ArgumentException($"TCP freezing supports IPv4 and IPv6 only, not {family}."),
    };

    public static AddressFamily FromKernel(byte family) => family switch
    {
        KernelIPv4 => AddressFamily.InterNetwork,
        KernelIPv6 => AddressFamily.InterNetworkV6,
        _ => AddressFamily.Unspecified,
    };
}
