using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>A freeze without a lease ends by itself (issue 22, item 2).</summary>
[Trait("Privileges", "root")]
public sealed class LeaseDefaultTests
{
    private static ConnectionKey Key(int i) => ConnectionKey.Parse($"198.18.0.1:{2000 + i}", "198.18.0.2:5000");

    [RootFact]
    public void A_freeze_that_names_no_lease_gets_the_options_default_and_forever_only_by_name()
    {
        using var network = TestNetwork.Create("tfec");
        using var pins = new PinRoot("tfec");
        FreezerOptions options = pins.Options(network.B);
        try
        {
            using TcpFreezer freezer = TcpFreezer.Attach(options);
            freezer.Freeze([Key(1)]);
            freezer.Freeze([Key(2)], lease: Lease.Forever);
            using (TcpFreezer shorter = TcpFreezer.Open(options with { DefaultLease = TimeSpan.FromSeconds(10) }))
                shorter.Freeze([Key(3)]);

            IReadOnlyList<FrozenConnection> listed = freezer.ListConnections();
            Assert.InRange(listed.Single(c => c.Key == Key(1)).LeaseRemaining!.Value, Lease.Default - TimeSpan.FromSeconds(30), Lease.Default);
            Assert.Null(listed.Single(c => c.Key == Key(2)).LeaseRemaining);
            Assert.InRange(listed.Single(c => c.Key == Key(3)).LeaseRemaining!.Value, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10));
            Assert.Throws<ArgumentOutOfRangeException>(() => freezer.Freeze([Key(4)], lease: TimeSpan.Zero));
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }
}
