using System.ComponentModel;
using System.Net;
using System.Text;
using BenchmarkDotNet.Attributes;

namespace TcpFreeze.Benchmarks;

/// <summary>The two iptables back-ends of Debian 12: nf_tables (the default <c>iptables</c>) and legacy x_tables.</summary>
public enum IptablesBackend
{
    Nft,
    Legacy,
}

/// <summary>
/// CRIU 4.2.1's iptables lock rules (criu/netfilter.c, IPTABLES_CONN_CMD), two per
/// connection: INPUT drops what the peer sends, OUTPUT what the local socket sends; both let
/// CRIU's repair-mode packets (mark 0xC114) through.
/// </summary>
internal static class CriuIptablesRules
{
    /// <summary>The INPUT and OUTPUT rule of a connection, after <c>-I</c> (lock) or <c>-D</c> (unlock).</summary>
    public static IEnumerable<string> ForConnection(string action, ConnectionKey connection)
    {
        yield return Rule(action, "INPUT", connection.Remote, connection.Local);
        yield return Rule(action, "OUTPUT", connection.Local, connection.Remote);
    }

    private static string Rule(string action, string chain, IPEndPoint source, IPEndPoint destination)
        => $"{action} {chain} --protocol tcp -m mark ! --mark 0xC114 --source {source.Address} --sport {source.Port} "
            + $"--destination {destination.Address} --dport {destination.Port} -j DROP";

    /// <summary>An <c>iptables-restore --noflush</c> input that applies <paramref name="action"/> to every connection's two rules.</summary>
    public static string RestoreInput(string action, IEnumerable<ConnectionKey> connections)
    {
        var text = new StringBuilder("*filter\n");
        foreach (ConnectionKey connection in connections)
            foreach (string rule in ForConnection(action, connection))
                text.Append(rule).Append('\n');
        return text.Append("COMMIT\n").ToString();
    }

    /// <summary>An <c>iptables-restore</c> input (without --noflush) that empties the filter table.</summary>
    public const string FlushFilterTable = "*filter\nCOMMIT\n";
}

/// <summary>Locks and unlocks with iptables rules: the namespace's filter table holds two DROP rules per locked connection.</summary>
public abstract class IptablesBenchmarks : LockCostBenchmarks
{
    protected abstract IptablesBackend Backend { get; }

    protected string Iptables => Backend == IptablesBackend.Nft ? "iptables" : "iptables-legacy";

    protected string IptablesRestore => Backend == IptablesBackend.Nft ? "iptables-restore" : "iptables-legacy-restore";

    private string IptablesSave => Backend == IptablesBackend.Nft ? "iptables-save" : "iptables-legacy-save";

    protected override int EntriesPerConnection => 2;

    /// <summary>iptables-restore's own input for the lock: the fastest way to the locked state.</summary>
    protected string RestoreLockInput { get; private set; } = "";

    protected override void Prepare() => RestoreLockInput = CriuIptablesRules.RestoreInput("-I", Keys);

    protected override void FastLock() => Namespace.Exec(IptablesRestore, ["-w", "--noflush"], RestoreLockInput);

    protected override void FastUnlock() => Namespace.Exec(IptablesRestore, ["-w"], CriuIptablesRules.FlushFilterTable);

    protected override int CountEntries()
        => Namespace.Exec(IptablesSave, ["-t", "filter"])
            .Split('\n')
            .Count(line => (line.StartsWith("-A INPUT ", StringComparison.Ordinal) || line.StartsWith("-A OUTPUT ", StringComparison.Ordinal))
                && line.EndsWith(" -j DROP", StringComparison.Ordinal));
}

/// <summary>
/// Exactly what CRIU 4.2.1 does in its default <c>--network-lock iptables</c> mode: per
/// connection and direction, one <c>sh -c "iptables -w -t filter -I INPUT ... -j DROP"</c>,
/// i.e. a fork, an exec of sh and an exec of iptables; unlock the same with <c>-D</c>, in
/// the same order. The commands are run by one shell started in the namespace with nsenter,
/// which forks for each line as CRIU does (the shell's start, about a millisecond, is
/// inside the measurement). Connection counts stop at 1,500: a rule's cost grows with the
/// number of rules (about 100 s to unlock 1,500 with the nft back-end, 19 s with legacy),
/// so 10,000 would take hours.
/// </summary>
public abstract class CriuIptablesBenchmarks : IptablesBenchmarks
{
    private string _lockScript = "", _unlockScript = "";

    protected override int[] FullConnectionCounts => [1, 100, 1_500];

    protected override void Prepare()
    {
        base.Prepare();
        _lockScript = Script("-I");
        _unlockScript = Script("-D");
    }

    private string Script(string action)
    {
        var script = new StringBuilder();
        foreach (ConnectionKey key in Keys)
            foreach (string rule in CriuIptablesRules.ForConnection(action, key))
                script.Append($"sh -c \"{Iptables} -w -t filter {rule}\"\n");
        return script.ToString();
    }

    protected override void LockAll() => Namespace.Exec("sh", ["-e"], _lockScript);

    protected override void UnlockAll() => Namespace.Exec("sh", ["-e"], _unlockScript);
}

[Description("CRIU-style: sh -c \"iptables -I/-D\" per rule, nft back-end (Debian's default)")]
[Config(typeof(VerySlowOperationConfig))]
public class CriuIptablesNftBenchmarks : CriuIptablesBenchmarks
{
    protected override IptablesBackend Backend => IptablesBackend.Nft;

    protected override string NamespacePurpose => "criu-nft";
}

[Description("CRIU-style: sh -c \"iptables-legacy -I/-D\" per rule")]
[Config(typeof(VerySlowOperationConfig))]
public class CriuIptablesLegacyBenchmarks : CriuIptablesBenchmarks
{
    protected override IptablesBackend Backend => IptablesBackend.Legacy;

    protected override string NamespacePurpose => "criu-legacy";
}

/// <summary>
/// iptables at its best: the same two rules per connection, all in one
/// <c>iptables-restore -w --noflush</c> (one process, one commit) to lock and one with all
/// the deletions to unlock.
/// </summary>
public abstract class IptablesRestoreBenchmarks : IptablesBenchmarks
{
    private string _unlockInput = "";

    protected override void Prepare()
    {
        base.Prepare();
        _unlockInput = CriuIptablesRules.RestoreInput("-D", Keys);
    }

    protected override void LockAll() => Namespace.Exec(IptablesRestore, ["-w", "--noflush"], RestoreLockInput);

    protected override void UnlockAll() => Namespace.Exec(IptablesRestore, ["-w", "--noflush"], _unlockInput);
}

/// <summary>
/// <see cref="IptablesRestoreBenchmarks"/> with the nft back-end. Deleting is quadratic
/// here (each deletion is looked up among all the rules: 39 ms for 100 connections, 3.3 s
/// for 1,500), so unlocking 10,000 (2.5 to 4 min estimated) and 100,000 are left out;
/// locking is measured up to 100,000.
/// </summary>
[Description("iptables-restore --noflush, all rules in one call, nft back-end")]
[Config(typeof(SlowOperationConfig))]
public class IptablesRestoreNftBenchmarks : IptablesRestoreBenchmarks
{
    protected override IptablesBackend Backend => IptablesBackend.Nft;

    protected override string NamespacePurpose => "restore-nft";

    protected override int[] FullConnectionCounts => [1, 100, 1_500, 10_000, 100_000];

    protected override int MaxUnlockConnections => 1_500;
}

/// <summary>
/// <see cref="IptablesRestoreBenchmarks"/> with the legacy back-end, which rewrites the
/// whole table once per commit. Unlocking 100,000 (200,000 deletions, each a linear search
/// of up to 100,000 rules: quadratic, about two minutes estimated from 28 ms at 1,500) is
/// left out.
/// </summary>
[Description("iptables-legacy-restore --noflush, all rules in one call")]
[Config(typeof(SlowOperationConfig))]
public class IptablesRestoreLegacyBenchmarks : IptablesRestoreBenchmarks
{
    protected override IptablesBackend Backend => IptablesBackend.Legacy;

    protected override string NamespacePurpose => "restore-legacy";

    protected override int[] FullConnectionCounts => [1, 100, 1_500, 10_000, 100_000];

    protected override int MaxUnlockConnections => 10_000;
}
