namespace TcpFreeze.Tests;

/// <summary>Reading the pin lock's holder from /proc/locks lines.</summary>
public sealed class PinLockHolderTests
{
    private static readonly string[] Locks =
    [
        "1: POSIX  ADVISORY  WRITE 812 00:19:4242 0 EOF",
        "2: FLOCK  ADVISORY  WRITE 977 00:2a:1234 0 EOF",
        "2: -> FLOCK  ADVISORY  WRITE 1001 00:2a:5678 0 EOF",
        "3: FLOCK  ADVISORY  WRITE 1500 00:2a:5678 0 EOF",
    ];

    [Fact]
    public void The_holder_is_the_flock_on_the_same_device_and_inode()
        => Assert.Equal(1500, PinLock.FindHolder(Locks, major: 0, minor: 0x2a, inode: 5678));

    [Fact]
    public void A_waiter_a_posix_lock_or_another_file_is_not_the_holder()
    {
        Assert.Null(PinLock.FindHolder(Locks[..3], 0, 0x2a, 5678)); // only a waiter (->) on it
        Assert.Null(PinLock.FindHolder(Locks, 0, 0x19, 4242));      // a POSIX lock, not a flock
        Assert.Null(PinLock.FindHolder(Locks, 0, 0x2b, 1234));      // another device
        Assert.Null(PinLock.FindHolder(["garbage", "", "9: FLOCK"], 0, 0x2a, 5678));
    }
}
