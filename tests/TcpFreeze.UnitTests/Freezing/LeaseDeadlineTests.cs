namespace TcpFreeze.Tests;

/// <summary>Lease deadlines on the kernel's 64-bit nanosecond clock.</summary>
public class LeaseDeadlineTests
{
    [Fact]
    public void Deadline_is_now_plus_the_lease_in_nanoseconds()
    {
        Assert.Equal(1_000UL + 2_500_000_000UL, TcpFreezer.LeaseDeadline(1_000, TimeSpan.FromSeconds(2.5)));
    }

    [Theory]
    [InlineData(20_000_000_000d)]  // 634 years: the nanoseconds overflow 64 bits
    [InlineData(900_000_000_000d)] // near TimeSpan.MaxValue
    public void A_lease_too_long_for_the_clock_never_ends_instead_of_wrapping_into_the_past(double seconds)
    {
        Assert.Equal(ulong.MaxValue, TcpFreezer.LeaseDeadline(123_456_789, TimeSpan.FromSeconds(seconds)));
    }

    [Fact]
    public void A_late_clock_plus_a_long_lease_saturates()
    {
        Assert.Equal(ulong.MaxValue, TcpFreezer.LeaseDeadline(ulong.MaxValue - 10, TimeSpan.FromSeconds(1)));
    }
}
