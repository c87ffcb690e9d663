using TcpFreeze.Native;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// The frozen set's map transactions, over an in-memory map with the kernel's answers: a freeze
/// is all or nothing, a refused freeze writes nothing, a renewal never freezes again, a release
/// reports what it let flow. The same rules run against the kernel in the integration tests.
/// </summary>
public sealed class FrozenSetTransactionTests
{
    private const ulong Now = 1_000_000_000_000;
    private const ulong Later = Now + 60_000_000_000;
    private const ulong Ended = Now - 1;

    private static ConnectionKey Key(int n) => ConnectionKey.Parse($"198.18.0.1:{1000 + n}", "198.18.0.2:80");

    private static (FrozenSet<ConnectionKey> Set, InMemoryMap<ConnectionKey, FreezeEntry> Map) Set(uint capacity, params (ConnectionKey Key, FreezeEntry Entry)[] present)
    {
        var map = new InMemoryMap<ConnectionKey, FreezeEntry>(capacity);
        foreach ((ConnectionKey key, FreezeEntry entry) in present)
            map.Update(key, entry);
        return (new FrozenSet<ConnectionKey>(map, "connections"), map);
    }

    private static FreezeEntry Recorded(ulong deadline) => new() { DeadlineNs = deadline, Dropped = 7, FirstDropNs = 42, RemoteSeq = 1234, RemoteDataDrops = 2 };

    [Fact]
    public void A_batch_that_fails_part_way_leaves_the_set_exactly_as_it_was()
    {
        FreezeEntry old = Recorded(Later);
        var (set, map) = Set(16, (Key(0), old));
        map.FailBatchWith = Errnos.ENOMEM;
        map.FailBatchAfter = 2; // the renewal of key 0 and the new key 1 are written, key 2 fails

        var e = Assert.Throws<TcpFreezeException>(() => set.Insert([Key(0), Key(1), Key(2)], Later + 1, Now, FreezeTiming.JustInTime));

        Assert.Contains("nothing was frozen", e.Message);
        Assert.Equal([Key(0)], map.Elements.Keys);
        Assert.Equal(old, map.Elements[Key(0)]);
    }

    [Fact]
    public void A_full_map_reported_by_the_kernel_is_a_refusal_that_names_the_capacity()
    {
        var (set, map) = Set(16);
        map.FailBatchWith = Errnos.E2BIG;
        map.FailBatchAfter = 1;

        var e = Assert.Throws<TcpFreezeException>(() => set.Insert([Key(0), Key(1)], Later, Now));

        Assert.Contains("the connections map is full (16 entries); nothing was frozen", e.Message);
        Assert.True(map.IsEmpty());
    }

    [Fact]
    public void A_batch_that_would_not_fit_is_refused_before_anything_is_written()
    {
        var (set, map) = Set(3, (Key(0), Recorded(Later)), (Key(1), Recorded(Later)));
        Dictionary<ConnectionKey, FreezeEntry> before = map.Elements;

        var e = Assert.Throws<TcpFreezeException>(() => set.Insert([Key(2), Key(3)], Later, Now));

        Assert.Contains("2 frozen + 2 new would exceed its 3 entries; nothing was frozen", e.Message);
        Assert.Equal(0, map.UpdateBatchCalls);
        Assert.Equal(before, map.Elements);
    }

    [Fact]
    public void Keys_frozen_already_do_not_count_against_the_capacity_again()
    {
        var (set, map) = Set(3, (Key(0), Recorded(Later)), (Key(1), Recorded(Later)));

        FrozenSet<ConnectionKey>.Insertion insertion = set.Insert([Key(0), Key(1), Key(2)], Later + 1, Now);

        Assert.Equal(3, map.Count);
        Assert.Equal([Key(2)], insertion.Created);
        Assert.Equal([Key(0), Key(1)], insertion.Replaced.Select(r => r.Key).OrderBy(k => k.ToString(), StringComparer.Ordinal));
        Assert.Equal(2, insertion.StillFrozen(Now));
    }

    [Fact]
    public void Expired_entries_are_swept_before_the_capacity_check_and_never_come_back()
    {
        var (set, map) = Set(2, (Key(0), Recorded(Ended)), (Key(1), Recorded(Ended)));

        FrozenSet<ConnectionKey>.Insertion insertion = set.Insert([Key(2), Key(3)], Later, Now);
        Assert.Equal(2, insertion.Swept);
        Assert.Equal([Key(2), Key(3)], map.Elements.Keys.OrderBy(k => k.ToString(), StringComparer.Ordinal));

        // A rollback undoes the write, not the sweep: an expired entry froze nothing.
        insertion.RollBack();
        Assert.True(map.IsEmpty());
    }

    [Fact]
    public void A_refreeze_keeps_what_the_programs_recorded_and_takes_the_new_lease_and_timing()
    {
        FreezeEntry old = Recorded(Later);
        var (set, map) = Set(4, (Key(0), old));

        set.Insert([Key(0)], Later + 5, Now, FreezeTiming.JustInTime);

        FreezeEntry now = map.Elements[Key(0)];
        Assert.Equal(Later + 5, now.DeadlineNs);
        Assert.Equal(FreezeTiming.JustInTime, now.Timing);
        Assert.Equal((old.Dropped, old.FirstDropNs, old.RemoteSequence), (now.Dropped, now.FirstDropNs, now.RemoteSequence));
    }

    [Fact]
    public void Rolling_back_an_insertion_deletes_the_new_keys_and_restores_the_old_values()
    {
        FreezeEntry old = Recorded(Later);
        var (set, map) = Set(8, (Key(0), old), (Key(9), Recorded(0)));

        FrozenSet<ConnectionKey>.Insertion insertion = set.Insert([Key(0), Key(1), Key(2)], Later + 1, Now, FreezeTiming.JustInTime);
        insertion.RollBack();

        Assert.Equal([Key(0), Key(9)], map.Elements.Keys.OrderBy(k => k.ToString(), StringComparer.Ordinal));
        Assert.Equal(old, map.Elements[Key(0)]);
    }

    [Fact]
    public void Renewing_gives_the_new_deadline_only_to_present_keys_whose_lease_still_runs()
    {
        var (set, map) = Set(8, (Key(0), Recorded(Later)), (Key(1), Recorded(Ended)), (Key(2), Recorded(0)));

        int renewed = set.Renew([Key(0), Key(1), Key(2), Key(3)], Later + 9, Now);

        Assert.Equal(1, renewed);
        Assert.Equal(Later + 9, map.Elements[Key(0)].DeadlineNs);
        Assert.Equal(7UL, map.Elements[Key(0)].Dropped);
        Assert.Equal(Ended, map.Elements[Key(1)].DeadlineNs);
        Assert.Equal(0UL, map.Elements[Key(2)].DeadlineNs);
        Assert.False(map.TryLookup(Key(3), out _));
    }

    [Fact]
    public void A_key_thawed_between_the_read_and_the_write_of_a_renewal_stays_thawed()
    {
        var (set, map) = Set(8, (Key(0), Recorded(Later)));
        map.BeforeUpdate = key => map.DeletePresent([key]); // another process thaws it meanwhile

        Assert.Equal(0, set.Renew([Key(0)], Later + 9, Now));
        Assert.True(map.IsEmpty());
    }

    [Fact]
    public void Releasing_reports_the_values_of_the_keys_it_let_flow_and_names_the_absent_ones()
    {
        FreezeEntry forever = Recorded(0);
        var (set, map) = Set(8, (Key(0), forever), (Key(1), Recorded(1)));
        var missing = new List<ConnectionKey>();
        var released = new List<(ConnectionKey Key, FreezeEntry Entry)>();

        int deleted = set.Release([Key(0), Key(1), Key(2)], missing, released);

        Assert.Equal(2, deleted);
        Assert.Equal([Key(2)], missing);
        Assert.Equal([(Key(0), forever)], released); // key 1's lease had ended: it dropped nothing any more
        Assert.True(map.IsEmpty());
    }

    [Fact]
    public void Releasing_hundreds_of_keys_reports_only_those_keys_and_leaves_the_rest_of_the_set_frozen()
    {
        // Above a few hundred keys the set reads the whole map at once: what it reports as released must still be
        // only the keys asked for, not another dump's connections frozen beside them (which would be kicked).
        (ConnectionKey Key, FreezeEntry Entry)[] present = Enumerable.Range(0, 700).Select(n => (Key(n), Recorded(0))).ToArray();
        var (set, map) = Set(1024, present);
        ConnectionKey[] asked = Enumerable.Range(0, 400).Select(Key).ToArray();
        var missing = new List<ConnectionKey>();
        var released = new List<(ConnectionKey Key, FreezeEntry Entry)>();

        Assert.Equal(400, set.Release(asked, missing, released));

        Assert.Empty(missing);
        Assert.Equal(asked.ToHashSet(), released.Select(r => r.Key).ToHashSet());
        Assert.Equal(300, map.Elements.Count);
        Assert.All(map.Elements.Keys, k => Assert.DoesNotContain(k, asked));
    }

    [Fact]
    public void Removing_expired_entries_leaves_the_live_ones()
    {
        var (set, map) = Set(8, (Key(0), Recorded(Later)), (Key(1), Recorded(Ended)), (Key(2), Recorded(0)));

        Assert.Equal(1, set.RemoveExpired(Now));
        Assert.Equal([Key(0), Key(2)], map.Elements.Keys.OrderBy(k => k.ToString(), StringComparer.Ordinal));
    }
}
