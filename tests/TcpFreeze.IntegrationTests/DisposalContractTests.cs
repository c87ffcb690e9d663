using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>The error and disposal contract (issue 22, item 4).</summary>
[Trait("Privileges", "root")]
public sealed class DisposalContractTests
{
    private static readonly ConnectionKey Key = ConnectionKey.Parse("198.18.0.1:4000", "198.18.0.2:5000");

    public static TheoryData<string> Members => ["Freeze", "FreezeAsync", "RenewLease", "Thaw", "ThawAsync", "ThawAll", "ListConnections", "ListEndpoints",
        "RemoveExpired", "GetStatistics", "ConnectionCapacity", "DetachIfIdle", "Detach"];

    private static object? Call(TcpFreezer freezer, string member) => member switch
    {
        "Freeze" => freezer.Freeze([Key]),
        "FreezeAsync" => freezer.FreezeAsync([Key]).GetAwaiter().GetResult(),
        "RenewLease" => freezer.RenewLease([Key], [], TimeSpan.FromSeconds(5)),
        "Thaw" => freezer.Thaw([Key]),
        "ThawAsync" => freezer.ThawAsync([Key]).GetAwaiter().GetResult(),
        "ThawAll" => freezer.ThawAll(),
        "ListConnections" => freezer.ListConnections(),
        "ListEndpoints" => freezer.ListEndpoints(),
        "RemoveExpired" => freezer.RemoveExpired(),
        "GetStatistics" => freezer.GetStatistics(),
        "ConnectionCapacity" => freezer.ConnectionCapacity,
        "DetachIfIdle" => freezer.DetachIfIdle(),
        "Detach" => freezer.Detach(),
        _ => throw new ArgumentOutOfRangeException(nameof(member)),
    };

    [RootTheory]
    [MemberData(nameof(Members))]
    public void After_detach_every_member_throws_object_disposed_naming_the_freezer(string member)
    {
        using var network = TestNetwork.Create("tfec");
        using var pins = new PinRoot("tfec");
        FreezerOptions options = pins.Options(network.B);
        try
        {
            TcpFreezer freezer = TcpFreezer.Attach(options);
            freezer.Detach();
            var e = Assert.Throws<ObjectDisposedException>(() => Call(freezer, member));
            Assert.Equal(typeof(TcpFreezer).FullName, e.ObjectName);
            // What only describes the freezer stays readable, and a second Dispose does nothing.
            Assert.NotEmpty(freezer.PinDirectory);
            freezer.Dispose();
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }
}
