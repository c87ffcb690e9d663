using System.Net;
using System.Net.Sockets;

namespace TcpFreeze.Tests.Infrastructure;

/// <summary>
/// Two network namespaces of this test's own joined by a veth pair, with addresses
/// from the benchmarking ranges only: host A is 198.18.X.1 / 2001:db8:X::1, host B
/// 198.18.X.2 / 2001:db8:X::2. Removed (with everything in them) on dispose.
/// </summary>
public sealed class TestNetwork : IDisposable
{
    private static int s_counter;

    private TestNetwork(string a, string b, int subnet)
    {
        NameA = a;
        NameB = b;
        Subnet = subnet;
    }

    public string NameA { get; }
    public string NameB { get; }
    public int Subnet { get; }
    public NetworkNamespace A => NetworkNamespace.Named(NameA);
    public NetworkNamespace B => NetworkNamespace.Named(NameB);
    public const string Interface = "veth0";

    public IPAddress AddressA(AddressFamily family) => family == AddressFamily.InterNetwork
        ? IPAddress.Parse($"198.18.{Subnet}.1") : IPAddress.Parse($"2001:db8:{Subnet:x}::1");

    public IPAddress AddressB(AddressFamily family) => family == AddressFamily.InterNetwork
        ? IPAddress.Parse($"198.18.{Subnet}.2") : IPAddress.Parse($"2001:db8:{Subnet:x}::2");

    /// <summary>
    /// A pair of namespaces named <paramref name="tag"/>, the process id and a counter (tests of one change may use their own tag).
    /// Without a tag: $TCPFREEZE_TEST_TAG (two test runs on one machine keep apart by it), else "tfz".
    /// </summary>
    public static TestNetwork Create(string? tag = null)
    {
        tag ??= TestTag.FromEnvironment ?? "tfz";
        int n = Interlocked.Increment(ref s_counter);
        int subnet = (Environment.ProcessId + n) % 250 + 1;
        string prefix = $"{tag}{Environment.ProcessId}x{n}";
        var network = new TestNetwork(prefix + "a", prefix + "b", subnet);
        try
        {
            network.Build();
            return network;
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    private void Build()
    {
        Run.Checked("ip", "netns", "add", NameA);
        Run.Checked("ip", "netns", "add", NameB);
        Run.Checked("ip", "link", "add", Interface, "netns", NameA, "type", "veth", "peer", "name", Interface, "netns", NameB);
        Configure(NameA, $"198.18.{Subnet}.1/24", $"2001:db8:{Subnet:x}::1/64");
        Configure(NameB, $"198.18.{Subnet}.2/24", $"2001:db8:{Subnet:x}::2/64");
    }

    private static void Configure(string ns, string v4, string v6)
    {
        Run.Checked("ip", "-n", ns, "link", "set", "lo", "up");
        Run.Checked("ip", "-n", ns, "addr", "add", v4, "dev", Interface);
        Run.Checked("ip", "-n", ns, "addr", "add", v6, "dev", Interface, "nodad");
        Run.Checked("ip", "-n", ns, "link", "set", Interface, "up");
    }

    public void Dispose()
    {
        foreach (string ns in new[] { NameA, NameB })
            Run.Capture("ip", "netns", "del", ns);
    }

    /// <summary>
    /// One nftables table in namespace <paramref name="ns"/> that drops incoming ICMP and ICMPv6 destination unreachable,
    /// as a firewall that filters ICMP does (or a TCP without RFC 6069 behaves): the resume kick never reaches it.
    /// </summary>
    public static void DropIcmpUnreachable(string ns)
    {
        string[] nsenter = ["--net=/run/netns/" + ns, "nft"];
        Run.Checked("nsenter", [.. nsenter, "add table inet tfrp"]);
        Run.Checked("nsenter", [.. nsenter, "add chain inet tfrp input { type filter hook input priority 0 ; }"]);
        Run.Checked("nsenter", [.. nsenter, "add rule inet tfrp input icmp type destination-unreachable drop"]);
        Run.Checked("nsenter", [.. nsenter, "add rule inet tfrp input icmpv6 type destination-unreachable drop"]);
    }
}

/// <summary>
/// The prefix of this test run's namespaces and pin roots when $TCPFREEZE_TEST_TAG sets one (letters and digits
/// only): two test runs on one machine then never meet in each other's namespaces or pins.
/// </summary>
public static class TestTag
{
    public static string? FromEnvironment { get; } = Environment.GetEnvironmentVariable("TCPFREEZE_TEST_TAG") is { Length: > 0 and <= 8 } tag
                                                      && tag.All(char.IsAsciiLetterOrDigit) ? tag : null;
}
