using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;

namespace TcpFreeze;

/// <summary>TCP states as the kernel numbers them (include/net/tcp_states.h) and prints them in /proc/net/tcp.</summary>
internal enum TcpSocketState : byte
{
    Established = 0x01,
    SynSent = 0x02,
    SynReceived = 0x03,
    FinWait1 = 0x04,
    FinWait2 = 0x05,
    TimeWait = 0x06,
    Close = 0x07,
    CloseWait = 0x08,
    LastAck = 0x09,
    Listen = 0x0A,
    Closing = 0x0B,
    NewSynReceived = 0x0C,
    BoundInactive = 0x0D,
}

/// <summary>One socket of a network namespace's TCP table: a line of /proc/PID/net/tcp or tcp6, or a sock_diag record (<see cref="SockDiag"/>).</summary>
/// <param name="Local">The socket's local address and port, as the kernel stores it (IPv4-mapped IPv6 is left as is).</param>
/// <param name="Remote">The peer's address and port; port 0 when there is no peer.</param>
/// <param name="State">The TCP state.</param>
/// <param name="Inode">The socket's inode: what /proc/PID/fd/N links to as "socket:[INODE]"; 0 for sockets no descriptor holds (TIME_WAIT, embryonic).</param>
internal readonly record struct ProcNetTcpEntry(IPEndPoint Local, IPEndPoint Remote, TcpSocketState State, ulong Inode);

/// <summary>
/// Reads the socket tables the kernel prints in /proc/PID/net/tcp and tcp6
/// (net/ipv4/tcp_ipv4.c get_tcp4_sock, net/ipv6/tcp_ipv6.c get_tcp6_sock). A line is
/// <c>sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...</c>.
/// </summary>
internal static class ProcNetTcp
{
    private const int LocalField = 1, RemoteField = 2, StateField = 3, InodeField = 9;

    /// <summary>Whether <paramref name="line"/> is the column header the tables start with.</summary>
    public static bool IsHeader(string line) => line.AsSpan().TrimStart().StartsWith("sl", StringComparison.Ordinal);

    /// <summary>Parses one socket line; throws <see cref="FormatException"/> saying what is wrong.</summary>
    public static ProcNetTcpEntry ParseLine(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        string[] fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length <= InodeField || !fields[0].EndsWith(':'))
            throw new FormatException($"'{line.Trim()}' is not a /proc/net/tcp socket line (expected 'sl: local remote st ... inode').");
        IPEndPoint local = ParseEndpoint(fields[LocalField], line);
        IPEndPoint remote = ParseEndpoint(fields[RemoteField], line);
        if (local.AddressFamily != remote.AddressFamily)
            throw new FormatException($"'{line.Trim()}' mixes an IPv4 and an IPv6 address.");
        if (fields[StateField].Length != 2
            || !byte.TryParse(fields[StateField], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out byte state))
            throw new FormatException($"'{fields[StateField]}' in '{line.Trim()}' is not a two-digit hexadecimal TCP state.");
        if (!ulong.TryParse(fields[InodeField], NumberStyles.None, CultureInfo.InvariantCulture, out ulong inode))
            throw new FormatException($"'{fields[InodeField]}' in '{line.Trim()}' is not a decimal inode number.");
        return new ProcNetTcpEntry(local, remote, (TcpSocketState)state, inode);
    }

    /// <summary>Parses "ADDRESS:PORT" as the kernel prints it: both in hexadecimal, the port in host order.</summary>
    internal static IPEndPoint ParseEndpoint(string text, string line)
    {
        int colon = text.IndexOf(':');
        if (colon < 0 || text.Length - colon - 1 != 4
            || !ushort.TryParse(text.AsSpan(colon + 1), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ushort port))
            throw new FormatException($"'{text}' in '{line.Trim()}' is not HEXADDRESS:HEXPORT.");
        return new IPEndPoint(ParseAddress(text.AsSpan(0, colon), line), port);
    }

    /// <summary>
    /// Parses an address of 8 (IPv4) or 32 (IPv6) hex digits. The kernel prints the
    /// address as 32-bit words, each with %08X of the word as the CPU loads it from the
    /// socket: IPv4's one __be32 and IPv6's four s6_addr32 words. So the bytes of each
    /// parsed word in the CPU's own order are the bytes of the address in network order
    /// ("0100007F" is 127.0.0.1 on a little-endian machine).
    /// </summary>
    internal static IPAddress ParseAddress(ReadOnlySpan<char> hex, string line)
    {
        if (hex.Length is not (8 or 32))
            throw new FormatException($"'{hex}' in '{line.Trim()}' is not an address of 8 (IPv4) or 32 (IPv6) hex digits.");
        Span<byte> bytes = stackalloc byte[hex.Length / 2];
        for (int word = 0; word < hex.Length / 8; word++)
        {
            if (!uint.TryParse(hex.Slice(word * 8, 8), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out uint value))
                throw new FormatException($"'{hex}' in '{line.Trim()}' is not hexadecimal.");
            MemoryMarshal.Write(bytes.Slice(word * 4, 4), in value);
        }
        return new IPAddress(bytes);
    }
}
