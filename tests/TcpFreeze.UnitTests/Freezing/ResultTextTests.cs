using System.Net;

namespace TcpFreeze.Tests;

/// <summary>Results print what they hold: a list's items, not its type's name.</summary>
public class ResultTextTests
{
    [Fact]
    public void Results_print_the_items_of_their_lists()
    {
        Assert.Equal("DetachResult { Interfaces = [lo, veth0], PinsRemoved = 9 }", new DetachResult(["lo", "veth0"], 9).ToString());
        Assert.Equal("DeadNamespaceCleanup { Directories = [], PinsRemoved = 0 }", new DeadNamespaceCleanup([], 0).ToString());
        var key = ConnectionKey.Parse("198.18.0.1:80 -> 198.18.0.2:40000");
        string thaw = new ThawResult(1, 0, [key], []).ToString();
        Assert.Contains("NotFrozenConnections = [198.18.0.1:80 -> 198.18.0.2:40000]", thaw);
        Assert.DoesNotContain("System.Collections", thaw);
        string freeze = (new FreezeResult(1, 1, 0) { InterfacesAttached = ["tun7"] }).ToString();
        Assert.Contains("InterfacesAttached = [tun7]", freeze);
        string found = new DiscoveredSockets(42, [42, 43], [key], [new EndpointKey(IPEndPoint.Parse("198.18.0.1:80"))]).ToString();
        Assert.Contains("Pids = [42, 43]", found);
        Assert.Contains("Listeners = [198.18.0.1:80]", found);
    }
}
