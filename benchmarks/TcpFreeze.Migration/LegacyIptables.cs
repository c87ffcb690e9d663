namespace TcpFreeze.Migration;

/// <summary>
/// Makes CRIU's <c>sh -c "iptables ..."</c> run iptables-legacy: a folder in the run's work folder holding a link
/// named <c>iptables</c> to the legacy multi-call binary (which picks its mode from the name it was called by), put
/// first on the PATH that CRIU and its shells inherit. The host's alternatives are not touched.
/// </summary>
internal static class LegacyIptables
{
    public static string PathFor(string workDirectory)
    {
        string target = new[] { "/usr/sbin/xtables-legacy-multi", "/sbin/xtables-legacy-multi" }.FirstOrDefault(File.Exists)
                        ?? throw new InvalidOperationException("xtables-legacy-multi (iptables-legacy) is not installed: bash scripts/setup.sh installs iptables");
        string folder = Path.Combine(workDirectory, "legacy-bin");
        Directory.CreateDirectory(folder);
        foreach (string name in new[] { "iptables", "iptables-save", "iptables-restore" })
            if (!File.Exists(Path.Combine(folder, name)))
                File.CreateSymbolicLink(Path.Combine(folder, name), target);
        return folder + ":" + (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin");
    }
}
