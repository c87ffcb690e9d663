using System.Globalization;

namespace TcpFreeze;

/// <summary>
/// Finds the pin directories of network namespaces that no longer exist. A directory is
/// named by its namespace's cookie, and a cookie cannot be looked up directly, so this
/// reads the cookie of every namespace that is still reachable and keeps every directory
/// whose cookie is among them. Reachable means: a thread of some process is in it
/// (/proc/PID/task/TID/ns/net), a process holds a descriptor of it (/proc/PID/fd/N), or a
/// file of it is mounted (/run/netns, /var/run/netns, and every nsfs mount listed in any
/// mount namespace's /proc/PID/mountinfo). A namespace nothing of this keeps alive is
/// gone (the kernel frees it), and its pins can only hold programs and maps that no
/// interface uses any more.
/// </summary>
internal static class DeadNamespacePins
{
    /// <summary>Removes, under the pin root's lock, the pins of every namespace under <paramref name="root"/> that is gone (see <see cref="TcpFreezer.RemoveDeadNamespaces"/>).</summary>
    public static DeadNamespaceCleanup RemoveUnder(string root, TimeSpan lockTimeout)
    {
        if (!Directory.Exists(root))
            return new DeadNamespaceCleanup([], 0);
        using PinLock pinLock = PinLock.Acquire(root, lockTimeout);
        List<string> dead = DeadDirectories(root, LiveCookies());
        int pins = 0;
        foreach (string directory in dead)
            pins += NamespacePins.At(directory).Remove();
        return new DeadNamespaceCleanup(dead, pins);
    }

    /// <summary>The cookies of every network namespace reachable from this host's processes and mounts.</summary>
    public static HashSet<ulong> LiveCookies()
    {
        // One path per namespace, keyed by its "net:[INODE]" identity where /proc tells it.
        var byInode = new Dictionary<string, string>(StringComparer.Ordinal);
        var mountedPaths = new List<string>();
        var mountNamespaces = new HashSet<string>(StringComparer.Ordinal);
        foreach (string process in SafeEnumerate(() => Directory.EnumerateDirectories("/proc")))
        {
            string pid = Path.GetFileName(process);
            if (!int.TryParse(pid, NumberStyles.None, CultureInfo.InvariantCulture, out _))
                continue;
            foreach (string task in SafeEnumerate(() => Directory.EnumerateDirectories(Path.Combine(process, "task"))))
                Remember(byInode, Path.Combine(task, "ns", "net"));
            foreach (string fd in SafeEnumerate(() => Directory.EnumerateFileSystemEntries(Path.Combine(process, "fd"))))
                Remember(byInode, fd);
            string? mnt = LinkTarget(Path.Combine(process, "ns", "mnt"));
            if (mnt is not null && mountNamespaces.Add(mnt))
                mountedPaths.AddRange(NsfsMounts(process));
        }
        mountedPaths.AddRange(SafeEnumerate(() => Directory.EnumerateFiles("/run/netns")));
        mountedPaths.AddRange(SafeEnumerate(() => Directory.EnumerateFiles("/var/run/netns")));

        var cookies = new HashSet<ulong> { NetworkNamespace.Current.Cookie };
        foreach (string path in byInode.Values.Concat(mountedPaths))
        {
            try
            {
                cookies.Add(NetworkNamespace.FromPath(path).Cookie);
            }
            catch (TcpFreezeException)
            {
                // gone meanwhile (the process exited), or not a network namespace file
            }
        }
        return cookies;
    }

    /// <summary>The pin directories under <paramref name="pinRoot"/> whose namespace is not among <paramref name="live"/>.</summary>
    public static List<string> DeadDirectories(string pinRoot, HashSet<ulong> live)
    {
        var dead = new List<string>();
        foreach (string directory in SafeEnumerate(() => Directory.EnumerateDirectories(pinRoot, NamespacePins.DirectoryPattern)))
            if (NamespacePins.TryParseCookie(directory, out ulong cookie) && !live.Contains(cookie))
                dead.Add(directory);
        dead.Sort(StringComparer.Ordinal);
        return dead;
    }

    private static void Remember(Dictionary<string, string> byInode, string path)
    {
        string? target = LinkTarget(path);
        if (target is not null && target.StartsWith("net:[", StringComparison.Ordinal))
            byInode.TryAdd(target, path);
    }

    /// <summary>Network namespace files mounted in <paramref name="process"/>'s mount namespace, as paths through its root.</summary>
    private static IEnumerable<string> NsfsMounts(string process)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(Path.Combine(process, "mountinfo"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
        var paths = new List<string>();
        foreach (string line in lines)
        {
            // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
            string[] fields = line.Split(' ');
            int separator = Array.IndexOf(fields, "-");
            if (fields.Length < 5 || separator < 0 || separator + 1 >= fields.Length || fields[separator + 1] != "nsfs"
                || !fields[3].StartsWith("net:[", StringComparison.Ordinal))
                continue;
            paths.Add(Path.Combine(process, "root") + Unescape(fields[4]));
        }
        return paths;
    }

    /// <summary>mountinfo escapes space, tab, newline and backslash as \ooo.</summary>
    private static string Unescape(string field)
    {
        if (!field.Contains('\\'))
            return field;
        var text = new System.Text.StringBuilder();
        for (int i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && i + 3 < field.Length)
            {
                string octal = field.Substring(i + 1, Math.Min(3, field.Length - i - 1));
                if (octal.Length == 3 && octal.All(c => c is >= '0' and <= '7'))
                {
                    text.Append((char)Convert.ToInt32(octal, 8));
                    i += 3;
                    continue;
                }
            }
            text.Append(field[i]);
        }
        return text.ToString();
    }

    private static string? LinkTarget(string path)
    {
        try
        {
            return new FileInfo(path).LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static IEnumerable<string> SafeEnumerate(Func<IEnumerable<string>> list)
    {
        try
        {
            return list().ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }
}
