namespace TcpFreeze;

/// <summary>
/// The common case of the key texts without allocations: "A.B.C.D:PORT" with plain decimal parts
/// (no leading zeros) and a port of 1-65535. The manifest of a migration holds one such pair per
/// connection, and a hook step reads or writes all of them: the general parser (which also explains
/// every mistake) allocates a dozen objects per key, and in a process that lives for one step each
/// fresh page of heap is a page fault. Anything else is left to <see cref="TcpEndpointText"/>, which
/// reads what this accepts the same way.
/// </summary>
internal static class IPv4Text
{
    /// <summary>The longest "255.255.255.255:65535".</summary>
    public const int MaxEndpointLength = 21;

    /// <summary>Reads "A.B.C.D:PORT" exactly (no spaces); false for anything else, which the general parser then reads or refuses.</summary>
    public static bool TryParseEndpoint(ReadOnlySpan<char> text, Span<byte> address, out int port)
    {
        port = 0;
        int i = 0;
        for (int part = 0; part < 4; part++)
        {
            int start = i, value = 0;
            while (i < text.Length && char.IsAsciiDigit(text[i]) && i - start < 3)
                value = value * 10 + (text[i++] - '0');
            int digits = i - start;
            if (digits == 0 || value > 255 || (digits > 1 && text[start] == '0'))
                return false;
            address[part] = (byte)value;
            char separator = part < 3 ? '.' : ':';
            if (i >= text.Length || text[i] != separator)
                return false;
            i++;
        }
        int portStart = i;
        while (i < text.Length && char.IsAsciiDigit(text[i]) && i - portStart < 5)
            port = port * 10 + (text[i++] - '0');
        return i == text.Length && i > portStart && port is >= 1 and <= 65535;
    }

    /// <summary>Writes "A.B.C.D:PORT", as IPAddress.ToString and <see cref="TcpEndpointText.Format(System.Net.IPAddress, int)"/> do for IPv4.</summary>
    public static int FormatEndpoint(ReadOnlySpan<byte> address, int port, Span<char> destination)
    {
        int n = 0;
        for (int part = 0; part < 4; part++)
        {
            address[part].TryFormat(destination[n..], out int written, default, System.Globalization.CultureInfo.InvariantCulture);
            n += written;
            destination[n++] = part < 3 ? '.' : ':';
        }
        port.TryFormat(destination[n..], out int portLength, default, System.Globalization.CultureInfo.InvariantCulture);
        return n + portLength;
    }
}
