using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Migration;

/// <summary>
/// What CRIU's network lock left in the test namespace: nft tables named CRIU-* (nftables
/// mode) and iptables rules that let only CRIU's mark 0xC114 through (iptables mode, via
/// Debian's nft-backed iptables, or iptables-legacy's x_tables when <see cref="Legacy"/>). Only those
/// are looked at and removed, and only in the namespace the harness created.
/// </summary>
internal sealed record NetfilterLeftovers(IReadOnlyList<string> CriuTables, IReadOnlyList<string> CriuRules, bool Legacy = false)
{
    public bool IsEmpty => CriuTables.Count == 0 && CriuRules.Count == 0;

    public int DropRules => CriuRules.Count(r => r.Contains("-j DROP", StringComparison.Ordinal));

    public override string ToString()
        => IsEmpty ? "none" : string.Join("; ", new[]
        {
            CriuTables.Count > 0 ? $"nft tables {string.Join(' ', CriuTables)}" : null,
            CriuRules.Count > 0 ? $"{CriuRules.Count} {(Legacy ? "iptables-legacy" : "iptables")} rules with mark 0xc114 ({DropRules} DROP)" : null,
        }.Where(s => s is not null));

    public static NetfilterLeftovers Inspect(string ns, bool legacy = false)
    {
        var tables = new List<string>();
        (int code, string output, _) = InNamespace(ns, ["nft", "list", "tables"]);
        if (code == 0)
            tables.AddRange(output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(l => l.Split(' '))
                .Where(w => w is ["table", _, var name] && name.StartsWith("CRIU", StringComparison.Ordinal))
                .Select(w => $"{w[1]} {w[2]}"));
        var rules = new List<string>();
        (code, output, _) = InNamespace(ns, [legacy ? "iptables-legacy-save" : "iptables-save", "-t", "filter"]);
        if (code == 0)
            rules.AddRange(output.Split('\n', StringSplitOptions.TrimEntries)
                .Where(l => l.StartsWith("-A ", StringComparison.Ordinal) && l.Contains("0xc114", StringComparison.OrdinalIgnoreCase)));
        return new NetfilterLeftovers(tables, rules, legacy);
    }

    /// <summary>Deletes the CRIU tables and rules found (rules in one iptables-restore transaction); returns what failed, or null.</summary>
    public string? Remove(string ns)
    {
        var failures = new List<string>();
        foreach (string table in CriuTables)
        {
            (int code, _, string error) = InNamespace(ns, ["nft", "delete", "table", .. table.Split(' ')]);
            if (code != 0)
                failures.Add($"nft delete table {table}: {error.Trim()}");
        }
        if (CriuRules.Count > 0)
        {
            string script = "*filter\n" + string.Concat(CriuRules.Select(r => "-D" + r[2..] + "\n")) + "COMMIT\n";
            (int code, _, string error) = InNamespace(ns, [Legacy ? "iptables-legacy-restore" : "iptables-restore", "--noflush"], script);
            if (code != 0)
                failures.Add($"iptables-restore --noflush (deleting {CriuRules.Count} rules): {error.Trim()}");
        }
        return failures.Count == 0 ? null : string.Join("; ", failures);
    }

    private static (int, string, string) InNamespace(string ns, string[] command, string? input = null)
        => Run.Capture("nsenter", [$"--net=/run/netns/{ns}", .. command], null, TimeSpan.FromMinutes(2), input);
}
