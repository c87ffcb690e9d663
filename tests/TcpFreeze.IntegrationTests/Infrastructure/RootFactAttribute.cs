namespace TcpFreeze.Tests.Infrastructure;

/// <summary>
/// A test that needs root (BPF, namespaces). Outside CI it is skipped when not root;
/// in CI (CI=true) it always runs, so a missing privilege fails instead of hiding.
/// </summary>
public sealed class RootFactAttribute : FactAttribute
{
    public RootFactAttribute()
    {
        if (!Privileges.IsRoot && !Privileges.IsCi)
            Skip = "needs root (run the suite as root, as CI does)";
    }
}

/// <summary>A theory that needs root; see <see cref="RootFactAttribute"/>.</summary>
public sealed class RootTheoryAttribute : TheoryAttribute
{
    public RootTheoryAttribute()
    {
        if (!Privileges.IsRoot && !Privileges.IsCi)
            Skip = "needs root (run the suite as root, as CI does)";
    }
}

public static class Privileges
{
    public static bool IsRoot => Environment.UserName == "root" || GetEuid() == 0;

    public static bool IsCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    private static uint GetEuid()
    {
        foreach (string line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("Uid:", StringComparison.Ordinal))
                return uint.Parse(line.Split('\t', StringSplitOptions.RemoveEmptyEntries)[2]);
        return uint.MaxValue;
    }
}
