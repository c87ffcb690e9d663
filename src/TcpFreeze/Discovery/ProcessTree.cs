using System.Globalization;

namespace TcpFreeze;

/// <summary>A process and its descendants, read from /proc (or a /proc-like tree in tests).</summary>
internal static class ProcessTree
{
    /// <summary>
    /// The root and its descendants, root first, from the parent PIDs in /proc/*/stat.
    /// /proc lists processes (thread-group leaders) only, and a child's parent PID is
    /// its parent's process id whichever thread forked it, so threads need no walk.
    /// </summary>
    public static List<int> Find(string procRoot, int rootPid, string operation)
    {
        // Fast path (CONFIG_PROC_CHILDREN): each thread lists the children it forked, so
        // the walk reads a few files instead of every process's stat.
        if (File.Exists(Path.Combine(PathOf(procRoot, rootPid), "task", rootPid.ToString(CultureInfo.InvariantCulture), "children"))
            && TryReadThreadGroup(procRoot, rootPid) == rootPid.ToString(CultureInfo.InvariantCulture)
            && TryWalkChildren(procRoot, rootPid) is { } walked)
            return walked;

        var children = new Dictionary<int, List<int>>();
        bool rootListed = false;
        foreach (string directory in Directory.EnumerateDirectories(procRoot))
        {
            if (!int.TryParse(Path.GetFileName(directory.AsSpan()), NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
                continue;
            rootListed |= pid == rootPid;
            if (TryReadParentPid(procRoot, pid) is int parent)
            {
                if (!children.TryGetValue(parent, out List<int>? list))
                    children[parent] = list = [];
                list.Add(pid);
            }
        }
        if (!rootListed)
        {
            string? process = TryReadThreadGroup(procRoot, rootPid);
            throw new TcpFreezeException(operation, process is null
                ? $"no process has PID {rootPid}"
                : $"{rootPid} is a thread of process {process}; pass the process id {process}");
        }

        // Breadth-first over a finite map; the visited set stops any cycle a PID reuse
        // during the scan could fake.
        var tree = new List<int> { rootPid };
        var visited = new HashSet<int> { rootPid };
        for (int i = 0; i < tree.Count; i++)
            if (children.TryGetValue(tree[i], out List<int>? kids))
                foreach (int kid in kids)
                    if (visited.Add(kid))
                        tree.Add(kid);
        return tree;
    }

    /// <summary>
    /// Breadth-first over /proc/PID/task/TID/children; null when a file cannot be read
    /// (then the caller scans every process instead).
    /// </summary>
    private static List<int>? TryWalkChildren(string procRoot, int rootPid)
    {
        var tree = new List<int> { rootPid };
        var visited = new HashSet<int> { rootPid };
        for (int i = 0; i < tree.Count && tree.Count < 1_000_000; i++)
        {
            string tasks = Path.Combine(PathOf(procRoot, tree[i]), "task");
            try
            {
                foreach (string task in Directory.EnumerateDirectories(tasks))
                    foreach (string word in File.ReadAllText(Path.Combine(task, "children")).Split(' ', StringSplitOptions.RemoveEmptyEntries))
                        if (int.TryParse(word, NumberStyles.None, CultureInfo.InvariantCulture, out int child) && visited.Add(child))
                            tree.Add(child);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                if (i == 0)
                    return null;
                // a descendant exited during the walk: it holds no sockets any more
            }
        }
        return tree;
    }

    /// <summary>The 4th field of /proc/PID/stat, after the command name, which may hold spaces and parentheses.</summary>
    public static int? TryReadParentPid(string procRoot, int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText(Path.Combine(PathOf(procRoot, pid), "stat"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null; // it exited during the scan
        }
        int close = stat.LastIndexOf(')');
        if (close < 0)
            return null;
        string[] rest = stat[(close + 1)..].Split(' ', 3, StringSplitOptions.RemoveEmptyEntries);
        return rest.Length >= 2 && int.TryParse(rest[1], NumberStyles.None, CultureInfo.InvariantCulture, out int parent) ? parent : null;
    }

    private static string? TryReadThreadGroup(string procRoot, int pid)
    {
        try
        {
            foreach (string line in File.ReadLines(Path.Combine(PathOf(procRoot, pid), "status")))
                if (line.StartsWith("Tgid:", StringComparison.Ordinal))
                    return line["Tgid:".Length..].Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return null;
    }

    /// <summary>/proc/PID under <paramref name="procRoot"/>.</summary>
    public static string PathOf(string procRoot, int pid) => Path.Combine(procRoot, pid.ToString(CultureInfo.InvariantCulture));
}
