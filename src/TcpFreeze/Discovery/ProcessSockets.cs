using Interop;
using System.Net;
using TcpFreeze.Ebpf.Interop;
using System.Net.Sockets;
using TcpFreeze.Native;

namespace TcpFreeze;

/// <summary>
/// Finds the TCP sockets of a process tree, e.g. to freeze everything a server holds
/// before checkpointing it: the tree from /proc, then each process's sockets with their
/// endpoints and states, read in the kernel by a BPF socket iterator (Linux 6.1 with BTF;
/// see <see cref="PrepareFastDiscovery"/>), or from its descriptors in /proc and the kernel's
/// sock_diag interface (or /proc/PID/net/tcp and tcp6 where the kernel lacks it).
/// </summary>
/// <remarks>Thread safety: stateless; calls may run concurrently (each reads /proc afresh).</remarks>
public static class ProcessSockets
{
    internal const string DefaultProcRoot = "/proc";

    /// <summary>Why <paramref name="path"/> of process <paramref name="pid"/> could not be read, and what helps (not "run as root" to root).</summary>
    internal static string PermissionDenied(string path, int pid)
        => Interop.Libc.geteuid() == 0
            ? $"cannot read {path} (permission denied, although this process is root: process {pid} may belong to a user namespace " +
              "this one does not own, or a security module refuses; run the command where that process's owner can)"
            : $"cannot read {path} (permission denied); run as root or as the owner of process {pid}";

    /// <summary>
    /// Loads, once per process, the kernel socket iterator that <see cref="Discover(int)"/> uses to read a process's
    /// TCP sockets in one call (Linux 6.1 with BTF; it needs CAP_BPF and CAP_PERFMON, or root). Discovery loads it by
    /// itself the first time a tree's root holds more than 256 descriptors; a long-running process that discovers
    /// inside a deadline (the CRIU hook's agent) calls this at start so no discovery pays the load (a few
    /// milliseconds). False, with the reason, where it cannot run: discovery then reads /proc and sock_diag, as
    /// it does for small trees anyway.
    /// </summary>
    /// <param name="unavailableReason">Why the iterator cannot run here; null when it can.</param>
    public static bool PrepareFastDiscovery(out string? unavailableReason)
    {
        bool ready = SocketIterator.TryGet() is not null;
        unavailableReason = ready ? null : SocketIterator.Unavailable;
        return ready;
    }

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
            throw new ArgumentException($"sock_diag and descriptors describe the real kernel's sockets; a /proc-like tree at {procRoot} needs {nameof(SocketTableSource.ProcText)}", nameof(source));
        string operation = $"discover the sockets of process {pid}";
        if (!Directory.Exists(ProcessTree.PathOf(procRoot, pid)))
            throw new TcpFreezeException(operation, $"no process has PID {pid}");

        List<int> tree = ProcessTree.Find(procRoot, pid, operation);
        if (ChooseIterator(pid, procRoot, source, operation) is { } iterator && SocketIterator.NetworkNamespaceOf(pid) is var netns and not 0)
        {
            // The iterator reads each socket's endpoints in the kernel: no descriptor scan, no table walk.
            var table = new List<ProcNetTcpEntry>();
            var seen = new HashSet<ulong>();
            var walked = new List<int>(tree.Count);
            foreach (int member in tree)
            {
                bool found = iterator.TryCollect(member, netns, seen, table);
                if (member == pid && !found)
                    throw new TcpFreezeException(operation, $"process {pid} exited while its sockets were being discovered");
                if (found)
                    walked.Add(member);
            }
            return Keys(pid, walked, table, heldInodes: null);
        }

        var inodes = new HashSet<ulong>();
        // Where each socket is held, for reading a few straight from their descriptors (real /proc only).
        Dictionary<ulong, (int Pid, int Fd)>? holders = source is SocketTableSource.Automatic or SocketTableSource.Descriptors ? [] : null;
        int limit = source == SocketTableSource.Descriptors ? int.MaxValue : DescriptorSockets.MaximumSockets;
        var scanned = new List<int>(tree.Count);
        foreach (int member in tree)
        {
            bool found = DescriptorScan.CollectSocketInodes(procRoot, member, inodes, operation, holders?.Count <= limit ? holders : null);
            if (member == pid && !found)
                throw new TcpFreezeException(operation, $"process {pid} exited while its sockets were being discovered");
            if (found)
                scanned.Add(member);
        }

        List<ProcNetTcpEntry>? direct = holders is not null && holders.Count == inodes.Count && inodes.Count <= limit ? DescriptorSockets.TryRead(holders) : null;
        if (direct is null && source == SocketTableSource.Descriptors)
            throw new TcpFreezeException(operation, $"the sockets of process {pid} cannot be read from their descriptors (pidfd_getfd needs ptrace permission over it, Linux 5.6+)");
        return Keys(pid, scanned, direct ?? SocketTable.Read(procRoot, pid, source, inodes, operation), inodes);
    }

    /// <summary>
    /// The socket iterator when <paramref name="source"/> asks for it, or (automatic, real /proc) when this process
    /// has it loaded already or the root process holds enough descriptors to repay loading it; null otherwise.
    /// </summary>
    private static SocketIterator? ChooseIterator(int pid, string procRoot, SocketTableSource source, string operation)
        => source switch
        {
            SocketTableSource.Iterator => SocketIterator.TryGet()
                ?? throw new TcpFreezeException(operation, SocketIterator.Unavailable ?? "the socket iterator is not available"),
            SocketTableSource.Automatic when procRoot == DefaultProcRoot
                => SocketIterator.IfLoaded
                   ?? (SocketIterator.Unavailable is null && DescriptorScan.CountDescriptors(procRoot, pid) > SocketIterator.WorthLoadingAbove ? SocketIterator.TryGet() : null),
            _ => null,
        };

    /// <summary>
    /// The connections and listeners of <paramref name="table"/>, keeping only sockets in <paramref name="heldInodes"/>
    /// when it is given (a namespace's table holds other processes' sockets too).
    /// </summary>
    private static DiscoveredSockets Keys(int pid, List<int> scanned, List<ProcNetTcpEntry> table, HashSet<ulong>? heldInodes)
    {
        int held = heldInodes is null ? table.Count : Math.Min(table.Count, heldInodes.Count); // at most one entry per descriptor's socket
        var connections = new List<ConnectionKey>(held);
        var listeners = new List<EndpointKey>();
        var seenConnections = new HashSet<ConnectionKey>(held);
        var seenListeners = new HashSet<EndpointKey>();
        foreach (ProcNetTcpEntry entry in table)
        {
            if (entry.Inode == 0 || heldInodes is not null && !heldInodes.Contains(entry.Inode))
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
    /// The live TCP sockets of the calling thread's network namespace that a restore of <paramref name="connections"/>
    /// and listeners on <paramref name="endpoints"/> would collide with: a socket that is exactly one of the connections
    /// (any state but TIME_WAIT and CLOSE, held by a descriptor), and a listener on an endpoint (the same port, and the
    /// same address or either one the any-address; [::] also counts as 0.0.0.0). The part of
    /// <see cref="FindLiveSockets"/> a restore needs, found without walking every connection of the namespace: for up to
    /// 64 connections the kernel looks each one up, and it lists its listeners alone.
    /// </summary>
    /// <exception cref="TcpFreezeException">The socket table cannot be read.</exception>
    public static IReadOnlyList<LiveSocket> FindCollisions(IEnumerable<ConnectionKey> connections, IEnumerable<EndpointKey> endpoints)
    {
        ArgumentNullException.ThrowIfNull(connections);
        ArgumentNullException.ThrowIfNull(endpoints);
        const string operation = "list the TCP sockets of this network namespace";
        ConnectionKey[] keys = [.. connections.Distinct()];
        EndpointKey[] listed = [.. endpoints];
        if (keys.Length <= 64)
        {
            try
            {
                if (SockDiag.TryDumpTcp(null, 1u << (int)TcpSocketState.Listen) is { } listeners && SockDiag.TryLookUpTcp(keys) is { } exact)
                    return Collisions(keys, listed, [.. exact, .. listeners]);
            }
            catch (NativeCallException e)
            {
                throw new TcpFreezeException(operation, e.Message, e);
            }
            catch (FormatException e)
            {
                throw new TcpFreezeException(operation, $"the kernel's sock_diag reply cannot be read: {e.Message}", e);
            }
        }
        return Collisions(keys, listed, FindLiveSockets(keys, listed));
    }

    private static List<LiveSocket> Collisions(ConnectionKey[] keys, EndpointKey[] endpoints, IEnumerable<ProcNetTcpEntry> entries)
        => Collisions(keys, endpoints, FindIn(entries, keys, endpoints));

    private static List<LiveSocket> Collisions(ConnectionKey[] keys, EndpointKey[] endpoints, IEnumerable<LiveSocket> live)
    {
        var wanted = new HashSet<ConnectionKey>(keys);
        return [.. live.Where(t => t.Remote is not null ? wanted.Contains(new ConnectionKey(t.Local, t.Remote)) : t.State == nameof(TcpSocketState.Listen))
                      .DistinctBy(t => t.Inode)];
    }

    /// <summary>
    /// The live TCP sockets of the calling thread's network namespace that freezing
    /// <paramref name="connections"/> and <paramref name="endpoints"/> would cut off: a
    /// socket whose local and remote endpoints are a listed connection, and a socket
    /// (listening or connected) whose local address and port a listed endpoint covers
    /// (the same port, and the same address or either one the any-address; a dual-stack
    /// [::] socket also counts as 0.0.0.0). TIME_WAIT sockets carry no traffic worth
    /// keeping and are not reported, nor are sockets no descriptor holds (closed
    /// connections still closing, not yet accepted ones): no process uses them. Before a restore, none of the restored sockets exist
    /// yet, so anything found here belongs to someone else.
    /// </summary>
    /// <exception cref="TcpFreezeException">The socket table cannot be read.</exception>
    public static IReadOnlyList<LiveSocket> FindLiveSockets(IEnumerable<ConnectionKey> connections, IEnumerable<EndpointKey> endpoints)
    {
        ArgumentNullException.ThrowIfNull(connections);
        ArgumentNullException.ThrowIfNull(endpoints);
        const string operation = "list the TCP sockets of this network namespace";
        ConnectionKey[] listedConnections = [.. connections];
        EndpointKey[] listedEndpoints = [.. endpoints];
        if (listedConnections.Length == 0 && listedEndpoints.Length == 0)
            return [];
        return FindIn(SocketTable.ReadOwn(operation), listedConnections, listedEndpoints);
    }

    private static List<LiveSocket> FindIn(IEnumerable<ProcNetTcpEntry> table, IEnumerable<ConnectionKey> connections, IEnumerable<EndpointKey> endpoints)
    {
        var wantedConnections = new HashSet<ConnectionKey>(connections);
        var endpointsByPort = new Dictionary<(AddressFamily, int), List<EndpointKey>>();
        foreach (EndpointKey endpoint in endpoints)
        {
            var slot = (endpoint.AddressFamily, endpoint.Endpoint.Port);
            if (!endpointsByPort.TryGetValue(slot, out List<EndpointKey>? list))
                endpointsByPort[slot] = list = [];
            list.Add(endpoint);
        }
        return FindIn(table, wantedConnections, endpointsByPort);
    }

    private static List<LiveSocket> FindIn(IEnumerable<ProcNetTcpEntry> table, HashSet<ConnectionKey> wantedConnections,
        Dictionary<(AddressFamily, int), List<EndpointKey>> endpointsByPort)
    {
        var found = new List<LiveSocket>();
        foreach (ProcNetTcpEntry entry in table)
        {
            if (entry.State is TcpSocketState.TimeWait or TcpSocketState.Close || entry.Local.Port == 0)
                continue;
            // A socket no descriptor holds (inode 0) is no one's: what is left of a connection its owner closed (FIN_WAIT,
            // LAST_ACK, CLOSING; a server that closes first, like nginx answering HTTP/1.0, leaves many, and a frozen peer
            // cannot finish closing them) or one no process had accepted. No process can use it, it ends on its own, and
            // CRIU never restores it (it dumps sockets through the tasks' descriptors), so a restore cannot collide with it.
            if (entry.Inode == 0)
                continue;
            IPEndPoint? remote = entry.Remote.Port == 0 ? null : entry.Remote;
            if (remote is not null && wantedConnections.Contains(new ConnectionKey(entry.Local, remote)))
            {
                found.Add(new LiveSocket(new ConnectionKey(entry.Local, remote).ToString(), entry.Local, remote, entry.State.ToString()) { Inode = entry.Inode });
                continue;
            }
            var local = new EndpointKey(entry.Local);
            EndpointKey? covering = Covering(local);
            if (covering is null && entry.Local.Address.Equals(IPAddress.IPv6Any))
                covering = Covering(new EndpointKey(new IPEndPoint(IPAddress.Any, entry.Local.Port)));
            if (covering is { } c)
                found.Add(new LiveSocket(c.ToString(), entry.Local, remote, entry.State.ToString()) { Inode = entry.Inode });
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

}
