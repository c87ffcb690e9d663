using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Runtime.ExceptionServices;
using Ebpf.Interop;
using TcpFreeze.Interop;

namespace TcpFreeze;

/// <summary>What <see cref="ProcessSockets.Discover(int)"/> found for a process tree.</summary>
/// <param name="RootPid">The process asked about.</param>
/// <param name="Pids">The processes whose descriptors were read: the root first, then its descendants.</param>
/// <param name="Connections">The TCP connections they hold, from their host's point of view (local = their socket), without duplicates.</param>
/// <param name="Listeners">The local endpoints they listen on, without duplicates.</param>
public sealed record DiscoveredSockets(int RootPid, IReadOnlyList<int> Pids, IReadOnlyList<ConnectionKey> Connections, IReadOnlyList<EndpointKey> Listeners);

/// <summary>A live socket that a freeze would cut off (see <see cref="ProcessSockets.FindLiveSockets"/>).</summary>
/// <param name="Listed">The connection or endpoint, as text, that covers the socket.</param>
/// <param name="Local">The socket's local endpoint.</param>
/// <param name="Remote">The socket's peer; null for a listener.</param>
/// <param name="State">The socket's TCP state, e.g. Established or Listen.</param>
public sealed record LiveSocket(string Listed, IPEndPoint Local, IPEndPoint? Remote, string State)
{
    /// <summary>"LOCAL -> REMOTE (State)" or "LOCAL (Listen)".</summary>
    public override string ToString()
        => Remote is null ? $"{TcpEndpointText.Format(Local)} ({State})" : $"{TcpEndpointText.Format(Local)} -> {TcpEndpointText.Format(Remote)} ({State})";
}

/// <summary>Where discovery reads the namespace's socket table from.</summary>
internal enum SocketTableSource
{
    /// <summary>sock_diag when the kernel offers it, else the text tables.</summary>
    Automatic,

    /// <summary>The kernel's sock_diag netlink interface only (fails when it is missing).</summary>
    SockDiag,

    /// <summary>The text tables /proc/PID/net/tcp and tcp6 only.</summary>
    ProcText,
}

/// <summary>
/// Finds the TCP sockets of a process tree, e.g. to freeze everything a server holds
/// before checkpointing it: the tree and its socket descriptors from /proc, the sockets'
/// endpoints and states from the kernel's sock_diag interface (or /proc/PID/net/tcp and
/// tcp6 where the kernel lacks it).
/// </summary>
public static class ProcessSockets
{
    private const string DefaultProcRoot = "/proc";

    /// <summary>
    /// Descriptor links are read into a buffer this long. A socket's link,
    /// "socket:[INODE]" with a 32-bit inode, needs 19 bytes; longer targets (paths) are
    /// cut short, and a link that fills the buffer is not a socket.
    /// </summary>
    private const int LinkBufferSize = 64;

    /// <summary>getdents64 buffer: about 1,300 descriptor entries per call.</summary>
    private const int DirectoryBufferSize = 32 * 1024;

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

    /// <summary><see cref="Discover(int)"/> over a /proc-like tree (tests use a fake one, which only the text tables can describe).</summary>
    internal static DiscoveredSockets Discover(int pid, string procRoot)
        => Discover(pid, procRoot, procRoot == DefaultProcRoot ? SocketTableSource.Automatic : SocketTableSource.ProcText);

    /// <summary><see cref="Discover(int)"/> with the socket table read from <paramref name="source"/> (tests compare them).</summary>
    internal static DiscoveredSockets Discover(int pid, string procRoot, SocketTableSource source)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pid);
        if (source != SocketTableSource.ProcText && procRoot != DefaultProcRoot)
            throw new ArgumentException($"sock_diag describes the real kernel's sockets; a /proc-like tree at {procRoot} needs {nameof(SocketTableSource.ProcText)}", nameof(source));
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

        List<ProcNetTcpEntry> table = ReadSocketTable(procRoot, pid, source, inodes, operation);
        int held = Math.Min(table.Count, inodes.Count); // at most one entry per descriptor's socket
        var connections = new List<ConnectionKey>(held);
        var listeners = new List<EndpointKey>();
        var seenConnections = new HashSet<ConnectionKey>(held);
        var seenListeners = new HashSet<EndpointKey>();
        foreach (ProcNetTcpEntry entry in table)
        {
            if (entry.Inode == 0 || !inodes.Contains(entry.Inode))
                continue;
            if (entry.State == TcpSocketState.Listen)
            {
                AddListener(new EndpointKey(entry.Local));
                // A listener on [::] is dual-stack unless IPV6_V6ONLY is set (the default,
                // net.ipv6.bindv6only=0): it also accepts IPv4 connections, which the
                // kernel programs see as IPv4 packets for 0.0.0.0:PORT. /proc does not
                // show IPV6_V6ONLY (sock_diag would, but both sources must agree), so both
                // are listed; freezing the IPv4 side of a v6-only listener only holds back
                // SYNs that no socket of it would take.
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
        return new DiscoveredSockets(pid, scanned, connections, listeners);

        void AddListener(EndpointKey key)
        {
            if (seenListeners.Add(key))
                listeners.Add(key);
        }
    }

    /// <summary>
    /// The live TCP sockets of the calling thread's network namespace that freezing
    /// <paramref name="connections"/> and <paramref name="endpoints"/> would cut off: a
    /// socket whose local and remote endpoints are a listed connection, and a socket
    /// (listening or connected) whose local address and port a listed endpoint covers
    /// (the same port, and the same address or either one the any-address; a dual-stack
    /// [::] socket also counts as 0.0.0.0). TIME_WAIT sockets carry no traffic worth
    /// keeping and are not reported. Before a restore, none of the restored sockets exist
    /// yet, so anything found here belongs to someone else.
    /// </summary>
    /// <exception cref="TcpFreezeException">The socket table cannot be read.</exception>
    public static IReadOnlyList<LiveSocket> FindLiveSockets(IEnumerable<ConnectionKey> connections, IEnumerable<EndpointKey> endpoints)
    {
        ArgumentNullException.ThrowIfNull(connections);
        ArgumentNullException.ThrowIfNull(endpoints);
        const string operation = "list the TCP sockets of this network namespace";
        var wantedConnections = new HashSet<ConnectionKey>(connections);
        var endpointsByPort = new Dictionary<(AddressFamily, int), List<EndpointKey>>();
        foreach (EndpointKey endpoint in endpoints)
        {
            var slot = (endpoint.AddressFamily, endpoint.Endpoint.Port);
            if (!endpointsByPort.TryGetValue(slot, out List<EndpointKey>? list))
                endpointsByPort[slot] = list = [];
            list.Add(endpoint);
        }
        if (wantedConnections.Count == 0 && endpointsByPort.Count == 0)
            return [];

        List<ProcNetTcpEntry> table;
        try
        {
            table = SockDiag.TryDumpTcp(null) ?? [.. ReadOwnTable("tcp", operation), .. ReadOwnTable("tcp6", operation)];
        }
        catch (NativeCallException e)
        {
            throw new TcpFreezeException(operation, e.Message, e);
        }
        catch (FormatException e)
        {
            throw new TcpFreezeException(operation, $"the kernel's sock_diag reply cannot be read: {e.Message}", e);
        }

        var found = new List<LiveSocket>();
        foreach (ProcNetTcpEntry entry in table)
        {
            if (entry.State is TcpSocketState.TimeWait or TcpSocketState.Close || entry.Local.Port == 0)
                continue;
            IPEndPoint? remote = entry.Remote.Port == 0 ? null : entry.Remote;
            if (remote is not null && wantedConnections.Contains(new ConnectionKey(entry.Local, remote)))
            {
                found.Add(new LiveSocket(new ConnectionKey(entry.Local, remote).ToString(), entry.Local, remote, entry.State.ToString()));
                continue;
            }
            var local = new EndpointKey(entry.Local);
            EndpointKey? covering = Covering(local);
            if (covering is null && entry.Local.Address.Equals(IPAddress.IPv6Any))
                covering = Covering(new EndpointKey(new IPEndPoint(IPAddress.Any, entry.Local.Port)));
            if (covering is { } c)
                found.Add(new LiveSocket(c.ToString(), entry.Local, remote, entry.State.ToString()));
        }
        return found;

        EndpointKey? Covering(EndpointKey local)
        {
            if (!endpointsByPort.TryGetValue((local.AddressFamily, local.Endpoint.Port), out List<EndpointKey>? candidates))
                return null;
            foreach (EndpointKey candidate in candidates)
                if (candidate.IsAnyAddress || local.IsAnyAddress || candidate.Equals(local))
                    return candidate;
            return null;
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
            CollectDescriptorTable(Path.Combine(thread, "fd"), pid, inodes, operation);
        }
        return true;
    }

    /// <summary>
    /// Adds the socket inodes of one descriptor table: getdents64 lists it and readlinkat
    /// reads each link into a stack buffer, so a table of thousands of descriptors costs
    /// two system calls per descriptor and no string. A directory that is gone (the
    /// thread exited) adds nothing; descriptors closed meanwhile are skipped.
    /// </summary>
    private static unsafe void CollectDescriptorTable(string fdDirectory, int pid, HashSet<ulong> inodes, string operation)
    {
        using FileDescriptorHandle directory = Libc.OpenHandle(fdDirectory, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC);
        if (directory.IsInvalid)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno is Errnos.ENOENT or Errnos.ESRCH or Errnos.ENOTDIR)
                return; // the thread exited
            throw DescriptorsUnreadable(fdDirectory, pid, errno, operation);
        }

        byte[] entries = ArrayPool<byte>.Shared.Rent(DirectoryBufferSize);
        byte* target = stackalloc byte[LinkBufferSize];
        try
        {
            fixed (byte* buffer = entries)
            {
                // Each call returns at least one entry until the end, so this ends; the
                // bound only guards against a directory that never stops growing.
                for (int calls = 0; calls < 1_000_000; calls++)
                {
                    nint length = Libc.getdents64(directory, buffer, (nuint)entries.Length);
                    if (length == 0)
                        return;
                    if (length < 0)
                    {
                        int errno = Marshal.GetLastPInvokeError();
                        if (errno is Errnos.ENOENT or Errnos.ESRCH)
                            return; // the thread exited while its table was read
                        if (errno == Errnos.EINTR)
                            continue;
                        throw DescriptorsUnreadable(fdDirectory, pid, errno, operation);
                    }
                    for (nint offset = 0; offset < length;)
                    {
                        byte* record = buffer + offset;
                        ushort recordLength = *(ushort*)(record + Libc.DirentLengthOffset);
                        if (recordLength == 0)
                            break;
                        offset += recordLength;
                        byte* name = record + Libc.DirentNameOffset;
                        if (name[0] == (byte)'.')
                            continue; // "." and ".."; descriptor names are digits
                        nint linkLength = Libc.readlinkat(directory, name, target, LinkBufferSize);
                        if (linkLength > 0 && linkLength < LinkBufferSize
                            && TryParseSocketInode(new ReadOnlySpan<byte>(target, (int)linkLength), out ulong inode))
                            inodes.Add(inode);
                        // < 0: closed meanwhile (ENOENT)
                    }
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(entries);
        }
    }

    private static TcpFreezeException DescriptorsUnreadable(string fdDirectory, int pid, int errno, string operation)
        => errno is Errnos.EACCES or Errnos.EPERM
            ? new TcpFreezeException(operation, $"cannot read {fdDirectory} (permission denied); run as root or as the owner of process {pid}")
            : new TcpFreezeException(operation, $"cannot read {fdDirectory}", new NativeCallException($"list the descriptors in {fdDirectory}", errno));

    /// <summary>Parses a descriptor link "socket:[12345]".</summary>
    internal static bool TryParseSocketInode(string? target, out ulong inode)
    {
        inode = 0;
        const string Prefix = "socket:[";
        return target is not null && target.StartsWith(Prefix, StringComparison.Ordinal) && target.EndsWith(']')
            && ulong.TryParse(target.AsSpan(Prefix.Length, target.Length - Prefix.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out inode);
    }

    /// <summary>Parses a descriptor link "socket:[12345]" as readlink returns it (bytes, no NUL).</summary>
    internal static bool TryParseSocketInode(ReadOnlySpan<byte> target, out ulong inode)
    {
        inode = 0;
        ReadOnlySpan<byte> prefix = "socket:["u8;
        return target.StartsWith(prefix) && target.Length > prefix.Length + 1 && target[^1] == (byte)']'
            && ulong.TryParse(target[prefix.Length..^1], NumberStyles.None, CultureInfo.InvariantCulture, out inode);
    }

    /// <summary>
    /// The TCP sockets of <paramref name="pid"/>'s network namespace, IPv4 first; from
    /// sock_diag only those in <paramref name="inodes"/> (the caller filters the text tables).
    /// </summary>
    private static List<ProcNetTcpEntry> ReadSocketTable(string procRoot, int pid, SocketTableSource source, HashSet<ulong> inodes, string operation)
    {
        if (source != SocketTableSource.ProcText)
        {
            List<ProcNetTcpEntry>? dumped = TryDumpWithSockDiag(pid, inodes, operation);
            if (dumped is not null)
                return dumped;
            if (source == SocketTableSource.SockDiag)
                throw new TcpFreezeException(operation,
                    $"sock_diag cannot be used for the network namespace of process {pid} (no NETLINK_SOCK_DIAG or inet_diag in this kernel, or the namespace cannot be entered)");
        }
        List<ProcNetTcpEntry> entries = ReadTable(procRoot, pid, "tcp", operation);
        entries.AddRange(ReadTable(procRoot, pid, "tcp6", operation));
        return entries;
    }

    /// <summary>
    /// Dumps the sockets through sock_diag, which reports the calling thread's network
    /// namespace: in place when that is <paramref name="pid"/>'s, else on a thread that
    /// enters it. Null when sock_diag cannot be used here (the kernel lacks it, the
    /// namespace cannot be told or entered without privileges, or the process exited);
    /// the text tables then give the answer or the error the caller would always have got.
    /// </summary>
    private static List<ProcNetTcpEntry>? TryDumpWithSockDiag(int pid, HashSet<ulong> inodes, string operation)
    {
        bool? same = NetworkNamespace.IsProcessInCallersNamespace(pid);
        if (same is null)
            return null;
        if (same == true)
            return DumpOrThrow(inodes, pid, operation);

        ExceptionDispatchInfo? failure = null;
        List<ProcNetTcpEntry>? dumped;
        try
        {
            dumped = NetworkNamespace.FromProcess(pid).Run(() =>
            {
                try
                {
                    return DumpOrThrow(inodes, pid, operation);
                }
                catch (TcpFreezeException e)
                {
                    failure = ExceptionDispatchInfo.Capture(e);
                    return null;
                }
            });
        }
        catch (Exception e) when (e is NativeCallException or TcpFreezeException)
        {
            return null; // entering the namespace needs CAP_SYS_ADMIN (or the process exited); reading /proc/PID/net needs neither
        }
        failure?.Throw();
        return dumped;
    }

    private static List<ProcNetTcpEntry>? DumpOrThrow(HashSet<ulong> inodes, int pid, string operation)
    {
        try
        {
            return SockDiag.TryDumpTcp(inodes);
        }
        catch (NativeCallException e)
        {
            throw new TcpFreezeException(operation, $"{e.Message} (in the network namespace of process {pid})", e);
        }
        catch (FormatException e)
        {
            throw new TcpFreezeException(operation, $"the kernel's sock_diag reply cannot be read: {e.Message}", e);
        }
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
        return ParseTable(path, lines, operation);
    }

    /// <summary>The calling thread's namespace's table (/proc/thread-self/net/TABLE).</summary>
    private static List<ProcNetTcpEntry> ReadOwnTable(string table, string operation)
    {
        string path = $"/proc/thread-self/net/{table}";
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (FileNotFoundException) when (table == "tcp6")
        {
            return [];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TcpFreezeException(operation, $"cannot read {path} ({e.Message})", e);
        }
        return ParseTable(path, lines, operation);
    }

    private static List<ProcNetTcpEntry> ParseTable(string path, string[] lines, string operation)
    {
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
