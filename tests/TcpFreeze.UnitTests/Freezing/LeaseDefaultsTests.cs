namespace TcpFreeze.Tests;

/// <summary>One default lease for every front end; "forever" only by name (issue 22, item 2).</summary>
public class LeaseDefaultsTests
{
    [Fact]
    public void Options_default_to_the_library_lease_of_120_seconds()
    {
        Assert.Equal(TimeSpan.FromSeconds(120), Lease.Default);
        Assert.Equal(Lease.Default, new FreezerOptions().DefaultLease);
    }

    [Fact]
    public void The_hook_settings_default_to_the_library_lease()
        => Assert.Equal(Lease.Default, new TcpFreeze.CriuHooks.HookSettings().Lease);

    [Fact]
    public void Forever_is_the_infinite_time_span_and_a_valid_default()
    {
        Assert.Equal(Timeout.InfiniteTimeSpan, Lease.Forever);
        Assert.Equal(Lease.Forever, new FreezerOptions { DefaultLease = Lease.Forever }.DefaultLease);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    public void A_default_lease_that_is_neither_positive_nor_forever_is_refused(int seconds)
        => Assert.Throws<ArgumentOutOfRangeException>(() => new FreezerOptions { DefaultLease = TimeSpan.FromSeconds(seconds) });
}
