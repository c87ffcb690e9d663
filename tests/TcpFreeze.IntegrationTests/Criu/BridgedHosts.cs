using System.Net;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.Criu;

/// <summary>
/// Two "hosts" (namespaces hostA and hostB) joined to a client namespace through a
/// bridge in it: client 198.18.S.1, hostA 198.18.S.11, hostB 198.18.S.12, and a
/// service address 198.18.S.10 that starts on hostA and can move to hostB; in IPv6 the same
/// with 2001:db8:S::1, ::11, ::12 and ::10.
/// </summary>
public sealed class BridgedHosts : IDisposable
{
    private static int s_counter;

    private BridgedHosts(string prefix, int subnet)
    {
        Client = prefix + "c";
        HostA = prefix + "a";
        HostB = prefix + "b";
        Subnet = subnet;
    }

    public string Client { get; }
    public string HostA { get; }
    public string HostB { get; }
    public int Subnet { get; }
    public IPAddress Service => IPAddress.Parse($"198.18.{Subnet}.10");

    /// <summary>The service address in IPv6 (2001:db8:S::10), which moves with the IPv4 one.</summary>
    public IPAddress Service6 => IPAddress.Parse($"2001:db8:{Subnet}::10");

    /// <summary>The service address of <paramref name="family"/>.</summary>
    public IPAddress ServiceOf(System.Net.Sockets.AddressFamily family)
        => family == System.Net.Sockets.AddressFamily.InterNetworkV6 ? Service6 : Service;

    public static BridgedHosts Create()
    {
        int n = Interlocked.Increment(ref s_counter);
        var hosts = new BridgedHosts($"tfx{Environment.ProcessId}x{n}", 200 + (Environment.ProcessId + n) % 50);
        try
        {
            hosts.Build();
            return hosts;
        }
        catch
        {
            hosts.Dispose();
            throw;
        }
    }

    private void Build()
    {
        foreach (string ns in new[] { Client, HostA, HostB })
        {
            Run.Checked("ip", "netns", "add", ns);
            Run.Checked("ip", "-n", ns, "link", "set", "lo", "up");
        }
        Run.Checked("ip", "-n", Client, "link", "add", "br0", "type", "bridge");
        Run.Checked("ip", "-n", Client, "addr", "add", $"198.18.{Subnet}.1/24", "dev", "br0");
        // IPv6 beside it, without duplicate address detection, so every address works at once.
        Run.Checked("ip", "-n", Client, "addr", "add", $"2001:db8:{Subnet}::1/64", "dev", "br0", "nodad");
        Run.Checked("ip", "-n", Client, "link", "set", "br0", "up");
        foreach ((string host, string port, int address) in new[] { (HostA, "pa", 11), (HostB, "pb", 12) })
        {
            Run.Checked("ip", "link", "add", "eth0", "netns", host, "type", "veth", "peer", "name", port, "netns", Client);
            Run.Checked("ip", "-n", Client, "link", "set", port, "master", "br0");
            Run.Checked("ip", "-n", Client, "link", "set", port, "up");
            Run.Checked("ip", "-n", host, "addr", "add", $"198.18.{Subnet}.{address}/24", "dev", "eth0");
            Run.Checked("ip", "-n", host, "addr", "add", $"2001:db8:{Subnet}::{address}/64", "dev", "eth0", "nodad");
            Run.Checked("ip", "-n", host, "link", "set", "eth0", "up");
        }
        Run.Checked("ip", "-n", HostA, "addr", "add", $"{Service}/24", "dev", "eth0");
        Run.Checked("ip", "-n", HostA, "addr", "add", $"{Service6}/64", "dev", "eth0", "nodad");
    }

    /// <summary>Removes the service addresses from hostA (after the dump).</summary>
    public void RemoveServiceFromHostA()
    {
        Run.Checked("ip", "-n", HostA, "addr", "del", $"{Service}/24", "dev", "eth0");
        Run.Checked("ip", "-n", HostA, "addr", "del", $"{Service6}/64", "dev", "eth0");
    }

    /// <summary>
    /// An action script for the restore on hostB that adds the service address at
    /// pre-restore. Listed after the TcpFreeze hook, it runs once the hook has frozen the
    /// manifest's connections: a client retransmission that reaches hostB before its
    /// socket is restored is dropped instead of answered with a reset.
    /// </summary>
    public string WriteAddressMoveScript(string directory)
    {
        string path = Path.Combine(directory, "move-service-address.sh");
        File.WriteAllText(path, $"""
            #!/bin/sh
            [ "$CRTOOLS_SCRIPT_ACTION" = pre-restore ] || exit 0
            ip addr add {Service}/24 dev eth0 || exit 1
            ip addr add {Service6}/64 dev eth0 nodad || exit 1
            ip -n {Client} neigh flush dev br0
            ip -6 -n {Client} neigh flush dev br0
            """.Replace("\r", ""));
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    public void Dispose()
    {
        foreach (string ns in new[] { Client, HostA, HostB })
            Run.Capture("ip", "netns", "del", ns);
    }
}
