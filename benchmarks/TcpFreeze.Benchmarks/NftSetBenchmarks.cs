using System.ComponentModel;
using System.Text;
using System.Text.Json;
using BenchmarkDotNet.Attributes;

namespace TcpFreeze.Benchmarks;

/// <summary>
/// Locks and unlocks with an nftables set of 4-tuples: one element per connection, keyed
/// like TcpFreeze's map (local address . local port . remote address . remote port), and two
/// rules that drop TCP matching the set, ingress and egress, after letting CRIU's
/// repair-mode mark through. (CRIU's own nftables mode adds two elements per connection, one
/// per direction, through libnftables in-process; here the per-element cost is what is
/// compared.) Lock = add the elements, unlock = delete them.
/// </summary>
public abstract class NftSetBenchmarks : LockCostBenchmarks
{
    protected const string Set = "inet tfbench frozen";

    private const string Table = """
        table inet tfbench {
            set frozen {
                type ipv4_addr . inet_service . ipv4_addr . inet_service
            }
            chain input {
                type filter hook input priority filter; policy accept;
                meta mark 0xc114 accept
                ip daddr . tcp dport . ip saddr . tcp sport @frozen drop
            }
            chain output {
                type filter hook output priority filter; policy accept;
                meta mark 0xc114 accept
                ip saddr . tcp sport . ip daddr . tcp dport @frozen drop
            }
        }
        """;

    private string _batchAdd = "";

    protected override int EntriesPerConnection => 1;

    protected override void Prepare()
    {
        Namespace.Exec("nft", ["-f", "-"], Table);
        _batchAdd = Batch("add");
    }

    protected static string Element(ConnectionKey key)
        => $"{key.Local.Address} . {key.Local.Port} . {key.Remote.Address} . {key.Remote.Port}";

    /// <summary>One nft command that adds or deletes every element.</summary>
    protected string Batch(string verb)
    {
        var text = new StringBuilder($"{verb} element {Set} {{\n");
        foreach (ConnectionKey key in Keys)
            text.Append(Element(key)).Append(",\n");
        return text.Append("}\n").ToString();
    }

    protected override void FastLock() => Namespace.Exec("nft", ["-f", "-"], _batchAdd);

    protected override void FastUnlock() => Namespace.Exec("nft", ["flush", "set", "inet", "tfbench", "frozen"]);

    protected override int CountEntries()
    {
        using JsonDocument listing = JsonDocument.Parse(Namespace.Exec("nft", ["-j", "list", "set", "inet", "tfbench", "frozen"]));
        foreach (JsonElement item in listing.RootElement.GetProperty("nftables").EnumerateArray())
            if (item.TryGetProperty("set", out JsonElement set))
                return set.TryGetProperty("elem", out JsonElement elements) ? elements.GetArrayLength() : 0;
        throw new InvalidOperationException("nft -j list set: no set in the listing");
    }
}

/// <summary>
/// One <c>nft add element</c> process per connection to lock, one <c>nft delete element</c>
/// per connection to unlock, run by one shell in the namespace. A delete costs about 16 ms
/// (an add about 2.5 ms) and reads the set back, so unlocking 10,000 (over 2.5 min
/// estimated) is left out, and 100,000 altogether (over 4 min to lock).
/// </summary>
[Description("nft set: one nft process per element")]
[Config(typeof(SlowOperationConfig))]
public class NftSetPerElementBenchmarks : NftSetBenchmarks
{
    private string _lockScript = "", _unlockScript = "";

    protected override string NamespacePurpose => "nft-each";

    protected override int[] FullConnectionCounts => [1, 100, 1_500, 10_000];

    protected override int MaxUnlockConnections => 1_500;

    protected override void Prepare()
    {
        base.Prepare();
        _lockScript = Script("add");
        _unlockScript = Script("delete");
    }

    private string Script(string verb)
    {
        var script = new StringBuilder();
        foreach (ConnectionKey key in Keys)
            script.Append($"nft '{verb} element {Set} {{ {Element(key)} }}'\n");
        return script.ToString();
    }

    protected override void LockAll() => Namespace.Exec("sh", ["-e"], _lockScript);

    protected override void UnlockAll() => Namespace.Exec("sh", ["-e"], _unlockScript);
}

/// <summary>One <c>nft -f</c> with every element to lock (one netlink transaction), one with every deletion to unlock.</summary>
[Description("nft set: one nft -f with all elements")]
[Config(typeof(SlowOperationConfig))]
public class NftSetBatchBenchmarks : NftSetBenchmarks
{
    private string _batchDelete = "";

    protected override string NamespacePurpose => "nft-batch";

    protected override int[] FullConnectionCounts => [1, 100, 1_500, 10_000, 100_000];

    protected override void Prepare()
    {
        base.Prepare();
        _batchDelete = Batch("delete");
    }

    protected override void LockAll() => FastLock();

    protected override void UnlockAll() => Namespace.Exec("nft", ["-f", "-"], _batchDelete);
}
