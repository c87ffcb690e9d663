using System.Globalization;
using System.Net;

namespace TcpFreeze;

/// <summary>What <see cref="ProcessSockets.Discover(int)"/> found for a process tree.</summary>
/// <param name="RootPid">The process asked about.</param>
/// <param name="Pids">The processes whose descriptors were read: the root first, then its descendants.</param>
/// <param name="Connections">The TCP connections they hold, from their host's point of view (local = their socket), without duplicates.</param>
/// <param name="Listeners">The local endpoints they listen on, without duplicates.</param>
public sealed record DiscoveredSockets(int RootPid, IReadOnlyList<int> Pids, IReadOnlyList<ConnectionKey> Connections, IReadOnlyList<EndpointKey> Listeners);

/// <summary>
/// Finds the TCP sockets of a process tree through /proc, e.g. to freeze everything a
/// server holds before checkpointing it.
/// </summary>
public static class ProcessSockets
{
    private const string DefaultProcRoot = "/proc";

    /// <summary>
    /// The TCP connections and listening endpoints held by process <paramref name="pid"/>
    /// and all its descendants (every thread's descriptors), IPv4 and IPv6, as the
    /// network namespace of <paramref name="pid"/> sees them. The result is a snapshot:
    /// sockets opened or closed while it is taken may or may not be in it. Sockets that
    /// belong to another network namespace than the root process's are not reported.
    /// Connections waiting in a listener's accept queue are held by no descriptor and
    /// are not listed either; freezing the listener's endpoint covers them.
    /// </summary>
    /// <param name="pid">The root process.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="pid"/> is not positive.</exception>
    /// <exception cref="TcpFreezeException">No such process, it is a thread id, it exited meanwhile, or its descriptors cannot be read.</exception>
    public static DiscoveredSockets Discover(int pid) => Discover(pid, DefaultProcRoot);

    /// <summary><see cref="Discover(int)"/> over a /proc-like tree (tests use a fake one).</summary>
    internal static DiscoveredSockets Discover(int pid, string procRoot)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pid);
        string operation = $"discover the sockets of process {pid}";
        if (!Directory.Exists(ProcessDirectory(procRoot, pid)))
            throw new TcpFreezeException(operation, $"no process has PID {pid}");

        List<int> tree = FindProcessTree(procRoot, pid, operation);
        var inodes = new HashSet<ulong>();
        var scanned = new List<int>(tree.Count);
        foreach (int member in tree)
        {
            bool found = CollectSocketInodes(procRoot, member, inodes, operation);
            if (member == pid && !found)
                throw new TcpFreezeException(operation, $"process {pid} exited while its sockets were being discovered");
            if (found)
                scanned.Add(member);
        }

        var connections = new List<ConnectionKey>();
        var listeners = new List<EndpointKey>();
        var seenConnections = new HashSet<ConnectionKey>();
        var seenListeners = new HashSet<EndpointKey>();
        foreach (string table in new[] { "tcp", "tcp6" })
        {
            foreach (ProcNetTcpEntry entry in ReadTable(procRoot, pid, table, operation))
            {
                if (entry.Inode == 0 || !inodes.Contains(entry.Inode))
                    continue;
                if (entry.State == TcpSocketState.Listen)
                {
                    AddListener(new EndpointKey(entry.Local));
                    // A listener on [::] is dual-stack unless IPV6_V6ONLY is set (the default,
                    // net.ipv6.bindv6only=0): it also accepts IPv4 connections, which the
                    // kernel programs see as IPv4 packets for 0.0.0.0:PORT. /proc does not
                    // show IPV6_V6ONLY, so both are listed; freezing the IPv4 side of a
                    // v6-only listener only holds back SYNs that no socket of it would take.
                    if (entry.Local.Address.Equals(IPAddress.IPv6Any))
                        AddListener(new EndpointKey(new IPEndPoint(IPAddress.Any, entry.Local.Port)));
                }
                else if (entry.State is not (TcpSocketState.TimeWait or TcpSocketState.Close) && entry.Remote.Port != 0)
                {
                    var key = new ConnectionKey(entry.Local, entry.Remote);
                    if (seenConnections.Add(key))
                        connections.Add(key);
                }
            }
        }
        return new DiscoveredSockets(pid, scanned, connections, listeners);

        void AddListener(EndpointKey key)
        {
            if (seenListeners.Add(key))
                listeners.Add(key);
        }
    }

    /// <summary>
    /// The root and its descendants, root first, from the parent PIDs in /proc/*/stat.
    /// /proc lists processes (thread-group leaders) only, and a child's parent PID is
    /// its parent's process id whichever thread forked it, so threads need no walk.
    /// </summary>
    internal static List<int> FindProcessTree(string procRoot, int rootPid, string operation)
    {
        // Fast path (CONFIG_PROC_CHILDREN): each thread lists the children it forked, so
        // the walk reads a few files instead of every process's stat.
        if (File.Exists(Path.Combine(ProcessDirectory(procRoot, rootPid), "task", rootPid.ToString(CultureInfo.InvariantCulture), "children"))
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
            string tasks = Path.Combine(ProcessDirectory(procRoot, tree[i]), "task");
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
    internal static int? TryReadParentPid(string procRoot, int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText(Path.Combine(ProcessDirectory(procRoot, pid), "stat"));
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
            foreach (string line in File.ReadLines(Path.Combine(ProcessDirectory(procRoot, pid), "status")))
                if (line.StartsWith("Tgid:", StringComparison.Ordinal))
                    return line["Tgid:".Length..].Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return null;
    }

    /// <summary>
    /// Adds the socket inodes of every thread's descriptors ("socket:[INODE]" links);
    /// threads normally share one table, but a thread made without CLONE_FILES has its
    /// own. False when the process is gone.
    /// </summary>
    private static bool CollectSocketInodes(string procRoot, int pid, HashSet<ulong> inodes, string operation)
    {
        string tasks = Path.Combine(ProcessDirectory(procRoot, pid), "task");
        string[] threads;
        try
        {
            threads = Directory.GetDirectories(tasks);
        }
        catch (DirectoryNotFoundException)
        {
            return false;
        }
        bool realProc = procRoot == DefaultProcRoot;
        foreach (string thread in threads)
        {
            // Threads normally share the process's table: read it once.
            if (realProc && int.TryParse(Path.GetFileName(thread), NumberStyles.None, CultureInfo.InvariantCulture, out int tid)
                && tid != pid && Interop.Libc.ShareFileTable(pid, tid))
                continue;
            string fdDirectory = Path.Combine(thread, "fd");
            string[] descriptors;
            try
            {
                descriptors = Directory.GetFileSystemEntries(fdDirectory);
            }
            catch (DirectoryNotFoundException)
            {
                continue; // the thread exited
            }
            catch (UnauthorizedAccessException)
            {
                throw new TcpFreezeException(operation,
                    $"cannot read {fdDirectory} (permission denied); run as root or as the owner of process {pid}");
            }
            foreach (string descriptor in descriptors)
            {
                string? target;
                try
                {
                    target = new FileInfo(descriptor).LinkTarget;
                }
                catch (IOException)
                {
                    continue; // closed meanwhile
                }
                if (TryParseSocketInode(target, out ulong inode))
                    inodes.Add(inode);
            }
        }
        return true;
    }

    /// <summary>Parses a descriptor link "socket:[12345]".</summary>
    internal static bool TryParseSocketInode(string? target, out ulong inode)
    {
        inode = 0;
        const string Prefix = "socket:[";
        return target is not null && target.StartsWith(Prefix, StringComparison.Ordinal) && target.EndsWith(']')
            && ulong.TryParse(target.AsSpan(Prefix.Length, target.Length - Prefix.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out inode);
    }

    private static List<ProcNetTcpEntry> ReadTable(string procRoot, int pid, string table, string operation)
    {
        string path = Path.Combine(ProcessDirectory(procRoot, pid), "net", table);
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (FileNotFoundException) when (table == "tcp6")
        {
            return []; // IPv6 is disabled in this kernel
        }
        catch (Exception e) when (e is DirectoryNotFoundException or FileNotFoundException)
        {
            throw new TcpFreezeException(operation, $"process {pid} exited while its sockets were being discovered", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new TcpFreezeException(operation, $"cannot read {path} (permission denied); run as root or as the owner of process {pid}", e);
        }

        var entries = new List<ProcNetTcpEntry>(lines.Length);
        foreach (string line in lines)
        {
            if (string.IsNullOrWhiteSpace(line) || ProcNetTcp.IsHeader(line))
                continue;
            try
            {
                entries.Add(ProcNetTcp.ParseLine(line));
            }
            catch (FormatException e)
            {
                throw new TcpFreezeException(operation, $"{path} has a line this version cannot read: {e.Message}", e);
            }
        }
        return entries;
    }

    private static string ProcessDirectory(string procRoot, int pid) => Path.Combine(procRoot, pid.ToString(CultureInfo.InvariantCulture));
}
