using System.Globalization;

namespace TcpFreeze.CriuHooks;

/// <summary>The process tree a CRIU run dumps, read from /proc.</summary>
internal static class DumpedTree
{
    /// <summary>The root and its descendants, from the parent PIDs in /proc/*/stat (the dumped tree, whose members CRIU may have moved nowhere).</summary>
    public static List<int> Members(string procRoot, int rootPid)
    {
        var children = new Dictionary<int, List<int>>();
        foreach (string directory in Directory.EnumerateDirectories(procRoot))
        {
            if (!int.TryParse(Path.GetFileName(directory), NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
                continue;
            try
            {
                string stat = File.ReadAllText(Path.Combine(directory, "stat"));
                string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                int parent = int.Parse(fields[1], CultureInfo.InvariantCulture);
                if (!children.TryGetValue(parent, out List<int>? list))
                    children[parent] = list = [];
                list.Add(pid);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException or ArgumentOutOfRangeException)
            {
                // exited during the scan
            }
        }
        var tree = new List<int> { rootPid };
        var visited = new HashSet<int> { rootPid };
        for (int i = 0; i < tree.Count; i++)
            foreach (int child in children.GetValueOrDefault(tree[i]) ?? [])
                if (visited.Add(child))
                    tree.Add(child);
        return tree;
    }

    /// <summary>
    /// A process other than <paramref name="criuPid"/> that ptrace-holds a member of the tree rooted at
    /// <paramref name="rootPid"/> (CRIU seizes every task it dumps, so this is typically another
    /// <c>criu dump</c> of the same tree), described for a message; null when there is none.
    /// </summary>
    public static string? FindOtherTracer(int rootPid, int criuPid, string procRoot = "/proc")
        => FindOtherTracer(Members(procRoot, rootPid), criuPid, procRoot);

    /// <summary>
    /// As <see cref="FindOtherTracer(int, int, string)"/>, over members the caller has already found (the hook's
    /// discovery walks the tree anyway, through each task's children list instead of every process's stat).
    /// </summary>
    public static string? FindOtherTracer(IEnumerable<int> members, int criuPid, string procRoot = "/proc")
    {
        foreach (int pid in members)
        {
            int? tracer = TracerOf(procRoot, pid);
            if (tracer is not { } t || t == 0 || t == criuPid)
                continue;
            return $"PID {pid} is held (ptrace) by PID {t}{CommandOf(procRoot, t)}, another CRIU dumping this tree or a debugger";
        }
        return null;
    }

    /// <summary>
    /// Whether process <paramref name="pid"/> is gone or on its way out: exited (no /proc entry,
    /// zombie or dead) or with a SIGKILL pending, which is how CRIU ends the tasks it dumped.
    /// </summary>
    public static bool IsDying(int pid, string procRoot = "/proc")
    {
        try
        {
            foreach (string line in File.ReadLines(Path.Combine(procRoot, pid.ToString(CultureInfo.InvariantCulture), "status")))
            {
                if (line.StartsWith("State:", StringComparison.Ordinal) && line.AsSpan(6).Trim() is [('Z' or 'X'), ..])
                    return true;
                if ((line.StartsWith("SigPnd:", StringComparison.Ordinal) || line.StartsWith("ShdPnd:", StringComparison.Ordinal))
                    && ulong.TryParse(line.AsSpan(7).Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong pending)
                    && (pending & (1UL << (SigKill - 1))) != 0)
                    return true;
            }
            return false;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return true;
        }
    }

    private const int SigKill = 9;

    /// <summary>The TracerPid line of /proc/PID/status; null when the process is gone.</summary>
    internal static int? TracerOf(string procRoot, int pid)
    {
        try
        {
            foreach (string line in File.ReadLines(Path.Combine(procRoot, pid.ToString(CultureInfo.InvariantCulture), "status")))
                if (line.StartsWith("TracerPid:", StringComparison.Ordinal))
                    return int.TryParse(line.AsSpan(10).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int tracer) ? tracer : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return null;
    }

    /// <summary>" (COMM)" of a process, for messages; empty when it is gone.</summary>
    internal static string CommandOf(string procRoot, int pid)
    {
        try
        {
            return $" ({File.ReadAllText(Path.Combine(procRoot, pid.ToString(CultureInfo.InvariantCulture), "comm")).Trim()})";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }
}
