using System.Net;
using System.Net.Sockets;

namespace TcpFreeze.Tests.Infrastructure;

/// <summary>Preparing a fresh <see cref="TestNetwork"/> for tests of TCP timing.</summary>
public static class NeighbourSettling
{
    /// <summary>
    /// Makes one connection per family and closes it, so that neighbour discovery between the
    /// two hosts is done: in a namespace made a moment ago the first IPv6 SYN can be lost, and
    /// a connection whose SYN was retransmitted starts with a 3 s retransmission timeout
    /// (RFC 6298) instead of about 200 ms, which tests of retransmission timing must not inherit.
    /// </summary>
    public static void SettleNeighbours(this TestNetwork network)
    {
        foreach (AddressFamily family in new[] { AddressFamily.InterNetwork, AddressFamily.InterNetworkV6 })
        {
            using var pair = TcpPair.Open(network.A, network.B, new IPEndPoint(network.AddressB(family), 7999));
            TcpPair.AssertRoundTrip(pair.Client, pair.Server, "settle");
        }
    }
}
