using System.Runtime.CompilerServices;
using Ebpf.Interop;
using TcpFreeze.Interop;

namespace TcpFreeze;

/// <summary>
/// Freezes and thaws TCP connections and local endpoints in one network namespace.
/// <para>
/// <see cref="Attach"/> loads the kernel programs (once per namespace), pins their maps
/// and programs under <see cref="FreezerOptions.PinRoot"/>/netns-COOKIE, and attaches
/// them to the namespace's interfaces: XDP (or, with <see cref="IngressHook.Tc"/>, a TC
/// clsact filter) for ingress, TC clsact for egress. Everything
/// it creates outlives the process, so another process (a later CRIU step, the CLI)
/// can <see cref="Open"/> the same frozen set. <see cref="Detach(FreezerOptions?)"/> removes it all.
/// </para>
/// <para>
/// Each freeze or thaw is one batch system call per map and is all or nothing: when
/// it fails, what it changed is undone before the exception is thrown. Mutating calls
/// hold an exclusive lock on the pin root, so concurrent processes never interleave.
/// </para>
/// </summary>
public sealed partial class TcpFreezer : IDisposable
{
    private readonly BpfMap _connections;
    private readonly BpfMap _endpoints;
    private readonly BpfMap _counters;
    private readonly BpfMap _config;
    private readonly FreezerOptions _options;

    private TcpFreezer(FreezerOptions options, string pinDirectory, BpfMap connections, BpfMap endpoints, BpfMap counters,
        BpfMap config, IReadOnlyList<AttachedInterface> interfaces)
    {
        _config = config;
        _options = options;
        PinDirectory = pinDirectory;
        _connections = connections;
        _endpoints = endpoints;
        _counters = counters;
        AttachedInterfaces = interfaces;
    }

    /// <summary>The directory holding this namespace's pins.</summary>
    public string PinDirectory { get; }

    /// <summary>The interfaces <see cref="Attach"/> attached to (empty after <see cref="Open"/>).</summary>
    public IReadOnlyList<AttachedInterface> AttachedInterfaces { get; }

    /// <summary>The connections map's capacity.</summary>
    public uint ConnectionCapacity => _connections.Info.MaxEntries;

    /// <summary>The pin directory of <paramref name="options"/>' namespace.</summary>
    public static string GetPinDirectory(FreezerOptions? options = null)
    {
        options ??= new FreezerOptions();
        return Path.Combine(Path.GetFullPath(options.PinRoot), $"netns-{options.Namespace.Cookie}");
    }

    /// <summary>Whether TcpFreeze's maps are pinned for <paramref name="options"/>' namespace.</summary>
    public static bool IsAttached(FreezerOptions? options = null) => HasMapPins(GetPinDirectory(options));

    private static bool HasMapPins(string directory)
        => File.Exists(Path.Combine(directory, BpfNames.ConnectionsPin)) && File.Exists(Path.Combine(directory, BpfNames.EndpointsPin));

    /// <summary>
    /// Loads (or reuses) the programs and maps of the namespace and attaches them to its
    /// interfaces. Calling it again is harmless: what is in place is kept, frozen
    /// entries included, and missing interfaces are added. An interface attached before
    /// with the other <see cref="FreezerOptions.IngressHook"/> is moved to this one: the
    /// new ingress hook is attached first and the old one removed once every interface
    /// is attached, so ingress is never unguarded.
    /// </summary>
    /// <exception cref="TcpFreezeException">Bad options (unknown interface, nothing up).</exception>
    /// <exception cref="BpfException">The kernel refused (privileges, a foreign XDP program, bpffs).</exception>
    public static TcpFreezer Attach(FreezerOptions? options = null)
    {
        options ??= new FreezerOptions();
        if (options.Logger is not null)
            LibbpfLog.SetLogger(options.Logger);
        bool createdRoot = BpfFs.EnsureDirectory(options.PinRoot);
        try
        {
            return AttachUnderLock(options);
        }
        catch when (createdRoot)
        {
            // Leave no trace of a failed first attach (e.g. an unprivileged caller on a
            // bpffs that lets everyone create directories).
            TryRemoveEmptyDirectory(options.PinRoot);
            throw;
        }
    }

    private static void TryRemoveEmptyDirectory(string directory)
    {
        try
        {
            if (Directory.Exists(directory) && !Directory.EnumerateFileSystemEntries(directory).Any())
                Directory.Delete(directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // someone else started using it meanwhile
        }
    }

    private static TcpFreezer AttachUnderLock(FreezerOptions options)
    {
        string directory = GetPinDirectory(options);
        using PinLock pinLock = PinLock.Acquire(options.PinRoot);
        var createdPins = new List<string>();
        var xdpDone = new List<XdpAttachment>();
        var tcDone = new List<TcAttachment>();
        bool createdDirectory = false;
        PinnedObjects? objects = null;
        try
        {
            if (!Directory.Exists(directory))
            {
                Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                createdDirectory = true;
            }
            objects = PinnedObjects.OpenOrLoad(directory, options, createdPins);
            PinnedObjects loaded = objects;
            IReadOnlyList<AttachedInterface> interfaces = options.Namespace.Run(() => AttachInterfaces(options, loaded, xdpDone, tcDone));
            objects.DisposePrograms();
            return new TcpFreezer(options, directory, objects.Connections, objects.Endpoints, objects.Counters, objects.Config, interfaces);
        }
        catch
        {
            RollBackAttach(options, xdpDone, tcDone, createdPins, createdDirectory ? directory : null);
            objects?.DisposeAll();
            throw;
        }
    }

    /// <summary>Opens the pinned state of a namespace that was attached before (by any process).</summary>
    /// <exception cref="TcpFreezeException">Nothing is attached there.</exception>
    public static TcpFreezer Open(FreezerOptions? options = null)
    {
        options ??= new FreezerOptions();
        if (options.Logger is not null)
            LibbpfLog.SetLogger(options.Logger);
        string directory = GetPinDirectory(options);
        if (!HasMapPins(directory))
        {
            string why = BpfFs.IsBpfFs(BpfFs.DefaultMountPoint) || !options.PinRoot.StartsWith(BpfFs.DefaultMountPoint, StringComparison.Ordinal)
                ? $"nothing is attached in {options.Namespace} (no pins in {directory}); run 'tcpfreeze attach' first"
                : $"bpffs is not mounted on {BpfFs.DefaultMountPoint}, so no TcpFreeze state exists; run 'tcpfreeze attach' first";
            throw new TcpFreezeException("open the frozen set", why);
        }
        BpfMap connections = PinnedObjects.OpenMap(directory, BpfNames.ConnectionsPin, ConnectionKey.Size);
        BpfMap endpoints = PinnedObjects.OpenMap(directory, BpfNames.EndpointsPin, EndpointKey.Size);
        BpfMap counters = PinnedObjects.OpenMap(directory, BpfNames.CountersPin, sizeof(uint));
        BpfMap config = PinnedObjects.OpenMap(directory, BpfNames.ConfigPin, sizeof(uint));
        return new TcpFreezer(options, directory, connections, endpoints, counters, config, []);
    }

    /// <summary>
    /// Freezes connections and endpoints: from now on their TCP segments are dropped in
    /// both directions, until thawed or until <paramref name="lease"/> ends. Endpoints
    /// go first, so a server stops taking new connections before its existing ones
    /// freeze. All or nothing: if any key cannot be frozen (e.g. the map is full), none is.
    /// Keys already frozen get this call's lease and keep their drop counts.
    /// </summary>
    /// <param name="connections">Connections, from this host's point of view.</param>
    /// <param name="endpoints">Local endpoints (listeners) to freeze.</param>
    /// <param name="lease">How long the freeze lasts at most; null: until thawed.</param>
    public FreezeResult Freeze(IEnumerable<ConnectionKey> connections, IEnumerable<EndpointKey>? endpoints = null, TimeSpan? lease = null)
    {
        ConnectionKey[] connectionKeys = Distinct(connections, nameof(connections));
        EndpointKey[] endpointKeys = Distinct(endpoints ?? [], nameof(endpoints));
        ulong deadline = 0, now = Libc.MonotonicNanoseconds();
        if (lease is { } l)
        {
            if (l <= TimeSpan.Zero)
                throw new ArgumentOutOfRangeException(nameof(lease), l, "A lease must be positive; pass null for a freeze without a lease.");
            deadline = LeaseDeadline(now, l);
        }

        using PinLock pinLock = PinLock.Acquire(_options.PinRoot);
        if (endpointKeys.Length > 0)
            EndpointGate.Open(_config);
        Insertion<EndpointKey> endpointInsert = Insert(_endpoints, endpointKeys, deadline, "endpoints");
        Insertion<ConnectionKey> connectionInsert;
        try
        {
            connectionInsert = Insert(_connections, connectionKeys, deadline, "connections");
        }
        catch
        {
            endpointInsert.RollBack();
            throw;
        }
        // An entry whose lease had ended dropped nothing any more: it was not frozen.
        return new FreezeResult(connectionInsert.CreatedCount, endpointInsert.CreatedCount,
            connectionInsert.Replaced.Count(r => r.Old.Remaining(now) != TimeSpan.Zero) + endpointInsert.Replaced.Count(r => r.Old.Remaining(now) != TimeSpan.Zero));
    }

    /// <summary>
    /// The CLOCK_MONOTONIC deadline of a lease. It saturates: a lease longer than the
    /// 64-bit nanosecond clock can count (about 584 years) never ends, where a wrapped
    /// sum would have put the deadline in the past and ended the freeze at once.
    /// </summary>
    internal static ulong LeaseDeadline(ulong nowNs, TimeSpan lease)
    {
        ulong ticks = (ulong)lease.Ticks;
        ulong ns = ticks > ulong.MaxValue / 100 ? ulong.MaxValue : ticks * 100;
        return ns > ulong.MaxValue - nowNs ? ulong.MaxValue : nowNs + ns;
    }

    /// <summary>Thaws connections and endpoints. Keys that are not frozen are reported, not an error.</summary>
    public ThawResult Thaw(IEnumerable<ConnectionKey> connections, IEnumerable<EndpointKey>? endpoints = null)
    {
        ConnectionKey[] connectionKeys = Distinct(connections, nameof(connections));
        EndpointKey[] endpointKeys = Distinct(endpoints ?? [], nameof(endpoints));
        using PinLock pinLock = PinLock.Acquire(_options.PinRoot);
        (int connectionsThawed, List<ConnectionKey> missingConnections) = DeletePresent(_connections, connectionKeys);
        (int endpointsThawed, List<EndpointKey> missingEndpoints) = DeletePresent(_endpoints, endpointKeys);
        if (endpointsThawed > 0)
            EndpointGate.CloseIfEmpty(_config, _endpoints);
        return new ThawResult(connectionsThawed, endpointsThawed, missingConnections, missingEndpoints);
    }

    /// <summary>Thaws everything frozen in this namespace.</summary>
    public ThawResult ThawAll()
    {
        using PinLock? pinLock = AcquirePinLockForThaw();
        (int connections, _) = DeletePresent(_connections, _connections.LookupAll<ConnectionKey, FreezeEntry>().Select(e => e.Key).ToArray());
        (int endpoints, _) = DeletePresent(_endpoints, _endpoints.LookupAll<EndpointKey, FreezeEntry>().Select(e => e.Key).ToArray());
        EndpointGate.CloseIfEmpty(_config, _endpoints);
        return new ThawResult(connections, endpoints, [], []);
    }

    /// <summary>The frozen connections with their drop counts and leases.</summary>
    public IReadOnlyList<FrozenConnection> ListConnections()
    {
        ulong now = Libc.MonotonicNanoseconds();
        var result = new List<FrozenConnection>();
        foreach ((ConnectionKey key, FreezeEntry entry) in _connections.LookupAll<ConnectionKey, FreezeEntry>())
            result.Add(new FrozenConnection(key, entry.Dropped, entry.Remaining(now)));
        return result;
    }

    /// <summary>The frozen endpoints with their drop counts and leases.</summary>
    public IReadOnlyList<FrozenEndpoint> ListEndpoints()
    {
        ulong now = Libc.MonotonicNanoseconds();
        var result = new List<FrozenEndpoint>();
        foreach ((EndpointKey key, FreezeEntry entry) in _endpoints.LookupAll<EndpointKey, FreezeEntry>())
            result.Add(new FrozenEndpoint(key, entry.Dropped, entry.Remaining(now)));
        return result;
    }

    /// <summary>Deletes entries whose lease has ended (the kernel already ignores them). Returns how many.</summary>
    public int RemoveExpired()
    {
        using PinLock pinLock = PinLock.Acquire(_options.PinRoot);
        ConnectionKey[] connections = ListConnections().Where(c => c.IsExpired).Select(c => c.Key).ToArray();
        EndpointKey[] endpoints = ListEndpoints().Where(e => e.IsExpired).Select(e => e.Key).ToArray();
        int removed = DeletePresent(_connections, connections).Deleted + DeletePresent(_endpoints, endpoints).Deleted;
        EndpointGate.CloseIfEmpty(_config, _endpoints);
        return removed;
    }

    /// <summary>Packet counters summed over CPUs, and how much is frozen.</summary>
    public FreezerStatistics GetStatistics()
    {
        ulong Sum(int index) => _counters.LookupPerCpu<uint, ulong>((uint)index).Aggregate(0UL, (a, b) => a + b);
        return new FreezerStatistics(Sum(BpfNames.CounterSeen), Sum(BpfNames.CounterDroppedIngress), Sum(BpfNames.CounterDroppedEgress),
            Sum(BpfNames.CounterPassed), _connections.LookupAll<ConnectionKey, FreezeEntry>().Count, _endpoints.LookupAll<EndpointKey, FreezeEntry>().Count, _connections.Info.MaxEntries);
    }

    /// <summary>Detaches this namespace's programs and removes its pins (see the static <see cref="Detach(FreezerOptions?)"/>).</summary>
    public DetachResult Detach()
    {
        Dispose();
        return Detach(_options);
    }

    /// <summary>
    /// Detaches TcpFreeze's programs from every interface of the namespace and removes
    /// its pins, whatever state they are in: it also removes TcpFreeze programs whose
    /// pins are gone, and pins whose programs someone else detached. Frozen
    /// connections flow again. Programs of other tools are never touched.
    /// </summary>
    public static DetachResult Detach(FreezerOptions? options = null)
    {
        options ??= new FreezerOptions();
        using PinLock? pinLock = Directory.Exists(options.PinRoot) ? PinLock.Acquire(options.PinRoot) : null;
        return DetachLocked(options);
    }

    /// <summary>
    /// Detaches like <see cref="Detach(FreezerOptions?)"/>, but only when nothing is frozen
    /// any more (entries whose lease ended do not count and are removed); the check and
    /// the detach happen under one lock, so a freeze by another process cannot slip in
    /// between. Returns null when something is still frozen and everything was kept.
    /// </summary>
    public DetachResult? DetachIfIdle()
    {
        using PinLock pinLock = PinLock.Acquire(_options.PinRoot);
        ulong now = Libc.MonotonicNanoseconds();
        bool active = _connections.LookupAll<ConnectionKey, FreezeEntry>().Any(e => e.Value.Remaining(now) != TimeSpan.Zero)
                      || _endpoints.LookupAll<EndpointKey, FreezeEntry>().Any(e => e.Value.Remaining(now) != TimeSpan.Zero);
        if (active)
            return null;
        Dispose();
        return DetachLocked(_options);
    }

    private static DetachResult DetachLocked(FreezerOptions options)
    {
        string directory = GetPinDirectory(options);
        uint xdpId = PinnedObjects.TryPinnedProgramId(directory, BpfNames.XdpPin);
        uint tcId = PinnedObjects.TryPinnedProgramId(directory, BpfNames.TcPin);
        uint tcIngressId = PinnedObjects.TryPinnedProgramId(directory, BpfNames.TcIngressPin);

        List<string> detached = options.Namespace.Run(() =>
        {
            var names = new List<string>();
            foreach (NetworkInterfaceInfo nic in NetworkInterfaceInfo.List())
            {
                bool any = false;
                XdpStatus xdp = Xdp.Query(nic.Index);
                if (xdp.ProgramId != 0 && (xdp.ProgramId == xdpId || PinnedObjects.IsTcpFreezeProgram(xdp.ProgramId, BpfNames.XdpProgram)))
                    any |= Xdp.Detach(nic.Index, xdp.ProgramId);
                uint tc = Tc.Query(nic.Index, TcDirection.Egress, BpfNames.TcHandle, BpfNames.TcPriority);
                if (tc != 0 && (tc == tcId || PinnedObjects.IsTcpFreezeProgram(tc, BpfNames.TcProgram)))
                    any |= Tc.Detach(nic.Index, TcDirection.Egress, BpfNames.TcHandle, BpfNames.TcPriority, tc);
                any |= DetachTcIngress(nic.Index, tcIngressId);
                if (any)
                    names.Add(nic.Name);
            }
            return names;
        });

        int pins = 0;
        if (Directory.Exists(directory))
        {
            foreach (string pin in BpfNames.AllPins)
                if (BpfFs.Unpin(Path.Combine(directory, pin)))
                    pins++;
            if (!Directory.EnumerateFileSystemEntries(directory).Any())
                Directory.Delete(directory);
        }
        return new DetachResult(detached, pins);
    }

    /// <summary>Closes this process's map descriptors; the pinned state stays.</summary>
    public void Dispose()
    {
        _connections.Dispose();
        _endpoints.Dispose();
        _counters.Dispose();
        _config.Dispose();
    }

    // ---------------------------------------------------------------- attach helpers

    private static List<AttachedInterface> AttachInterfaces(FreezerOptions options, PinnedObjects objects, List<XdpAttachment> xdpDone, List<TcAttachment> tcDone)
    {
        IReadOnlyList<NetworkInterfaceInfo> all = NetworkInterfaceInfo.List();
        List<NetworkInterfaceInfo> targets;
        if (options.Interfaces is { Count: > 0 } names)
        {
            targets = [];
            foreach (string name in names.Distinct())
            {
                NetworkInterfaceInfo nic = all.FirstOrDefault(i => i.Name == name)
                    ?? throw new TcpFreezeException($"attach to interface '{name}'",
                        $"there is no interface '{name}' in {options.Namespace}; 'ip link' lists the interfaces ({string.Join(", ", all.Select(i => i.Name))})");
                if (!nic.IsSupported)
                    throw new TcpFreezeException($"attach to interface '{name}'",
                        $"it is not an Ethernet or loopback interface (hardware type {nic.HardwareType}); TcpFreeze's programs parse Ethernet frames");
                targets.Add(nic);
            }
        }
        else
        {
            targets = all.Where(i => i.IsUp && i.IsSupported).ToList();
            if (targets.Count == 0)
                throw new TcpFreezeException("attach", $"no Ethernet or loopback interface is up in {options.Namespace}; bring one up or name interfaces explicitly");
        }

        var result = new List<AttachedInterface>();
        BpfProgram xdp = objects.Xdp!, tc = objects.Tc!, tcIngress = objects.TcIngress!;
        bool useTc = options.IngressHook == IngressHook.Tc;
        foreach (NetworkInterfaceInfo nic in targets)
        {
            XdpMode mode = XdpMode.Auto;
            bool ingressCreated;
            if (useTc)
            {
                uint currentIngress = Tc.Query(nic.Index, TcDirection.Ingress, BpfNames.TcHandle, BpfNames.TcPriority);
                bool staleIngress = currentIngress != 0 && currentIngress != tcIngress.Info.Id && PinnedObjects.IsTcpFreezeProgram(currentIngress, BpfNames.TcIngressProgram);
                TcAttachment i = Tc.Attach(tcIngress, nic.Index, TcDirection.Ingress, BpfNames.TcHandle, BpfNames.TcPriority, options.ReplaceForeignPrograms || staleIngress);
                tcDone.Add(i);
                ingressCreated = i.Created;
            }
            else
            {
                XdpStatus current = Xdp.Query(nic.Index);
                bool staleOurs = current.ProgramId != 0 && current.ProgramId != xdp.Info.Id && PinnedObjects.IsTcpFreezeProgram(current.ProgramId, BpfNames.XdpProgram);
                XdpAttachment x = Xdp.Attach(xdp, nic.Index, options.XdpMode, options.ReplaceForeignPrograms || staleOurs);
                xdpDone.Add(x);
                mode = x.Mode;
                ingressCreated = x.Created;
            }

            uint currentTc = Tc.Query(nic.Index, TcDirection.Egress, BpfNames.TcHandle, BpfNames.TcPriority);
            bool staleTc = currentTc != 0 && currentTc != tc.Info.Id && PinnedObjects.IsTcpFreezeProgram(currentTc, BpfNames.TcProgram);
            TcAttachment t = Tc.Attach(tc, nic.Index, TcDirection.Egress, BpfNames.TcHandle, BpfNames.TcPriority, options.ReplaceForeignPrograms || staleTc);
            tcDone.Add(t);
            result.Add(new AttachedInterface(nic.Name, nic.Index, mode, ingressCreated || t.Created) { IngressHook = options.IngressHook });
        }

        // Every interface is attached: only now retire TcpFreeze's ingress program from
        // the other hook, so a failed attach (rolled back above) never loses a working one.
        for (int n = 0; n < result.Count; n++)
        {
            try
            {
                bool moved = useTc ? DetachOurXdp(result[n].Index, xdp.Info.Id) : DetachTcIngress(result[n].Index, tcIngress.Info.Id);
                if (moved)
                    result[n] = result[n] with { Created = true };
            }
            catch (BpfException e)
            {
                // Both ingress programs share the maps and give the same verdicts: running both is harmless.
                options.Logger?.LogIngressMoveFailure(e, result[n].Name);
            }
        }
        return result;
    }

    /// <summary>Detaches a TcpFreeze XDP program (ours by id, or any by name) from an interface; a foreign one stays.</summary>
    private static bool DetachOurXdp(int ifIndex, uint ourId)
    {
        XdpStatus xdp = Xdp.Query(ifIndex);
        return xdp.ProgramId != 0 && (xdp.ProgramId == ourId || PinnedObjects.IsTcpFreezeProgram(xdp.ProgramId, BpfNames.XdpProgram))
            && Xdp.Detach(ifIndex, xdp.ProgramId);
    }

    /// <summary>Detaches a TcpFreeze TC ingress filter (ours by id, or any by name) at TcpFreeze's handle; a foreign one stays.</summary>
    private static bool DetachTcIngress(int ifIndex, uint ourId)
    {
        uint ingress = Tc.Query(ifIndex, TcDirection.Ingress, BpfNames.TcHandle, BpfNames.TcPriority);
        return ingress != 0 && (ingress == ourId || PinnedObjects.IsTcpFreezeProgram(ingress, BpfNames.TcIngressProgram))
            && Tc.Detach(ifIndex, TcDirection.Ingress, BpfNames.TcHandle, BpfNames.TcPriority, ingress);
    }

    private static void RollBackAttach(FreezerOptions options, List<XdpAttachment> xdpDone, List<TcAttachment> tcDone, List<string> createdPins, string? createdDirectory)
    {
        try
        {
            options.Namespace.Run(() =>
            {
                foreach (TcAttachment t in tcDone.Where(t => t.Created))
                    t.Detach();
                foreach (XdpAttachment x in xdpDone.Where(x => x.Created))
                    x.Detach();
            });
        }
        catch (Exception e)
        {
            options.Logger?.LogRollbackFailure(e);
        }
        foreach (string pin in createdPins)
            BpfFs.Unpin(pin);
        if (createdDirectory is not null && Directory.Exists(createdDirectory) && !Directory.EnumerateFileSystemEntries(createdDirectory).Any())
            Directory.Delete(createdDirectory);
    }

    // ---------------------------------------------------------------- map helpers

    private static T[] Distinct<T>(IEnumerable<T> keys, string parameter) where T : struct, IEquatable<T>
    {
        ArgumentNullException.ThrowIfNull(keys, parameter);
        T[] array = keys.Distinct().ToArray();
        if (array.Contains(default))
            throw new ArgumentException("An empty (default) key was given; build keys from endpoints or parse them from text.", parameter);
        return array;
    }

    /// <summary>
    /// Writes all keys in one batch call. Keys that are frozen already keep their drop
    /// count and get the new lease; their old values are kept so that a failure part-way
    /// (e.g. a full map) can be undone exactly: new keys deleted, old values restored.
    /// </summary>
    private static Insertion<TKey> Insert<TKey>(BpfMap map, TKey[] keys, ulong deadline, string what) where TKey : unmanaged, IEquatable<TKey>
    {
        var insertion = new Insertion<TKey>(map);
        if (keys.Length == 0)
            return insertion;
        Dictionary<TKey, FreezeEntry>? existing = FindExisting(map, keys);
        var values = new FreezeEntry[keys.Length];
        for (int i = 0; i < keys.Length; i++)
        {
            values[i].DeadlineNs = deadline;
            if (existing is not null && existing.TryGetValue(keys[i], out FreezeEntry old))
            {
                values[i].Dropped = old.Dropped;
                insertion.Replaced.Add((keys[i], old));
            }
            else
            {
                insertion.Created.Add(keys[i]);
            }
        }
        try
        {
            map.UpdateBatch<TKey, FreezeEntry>(keys, values);
        }
        catch (BpfException e)
        {
            insertion.RollBack();
            string reason = e.Errno is Errnos.E2BIG or Errnos.ENOSPC or Errnos.ENOMEM
                ? $"the {what} map is full ({map.Info.MaxEntries} entries); nothing was frozen. Thaw entries that are no longer needed, or detach and attach again with a larger capacity"
                : $"{e.Message}; nothing was frozen";
            throw new TcpFreezeException($"freeze {keys.Length} {what}", reason, e);
        }
        return insertion;
    }

    /// <summary>
    /// The keys of <paramref name="keys"/> that are in the map already, with their
    /// values. The common case (CRIU) writes into an empty map and needs one system
    /// call to learn that; a small batch looks its keys up one by one; a large batch
    /// into a non-empty map reads the whole map in a few batch calls.
    /// </summary>
    private static Dictionary<TKey, FreezeEntry>? FindExisting<TKey>(BpfMap map, TKey[] keys) where TKey : unmanaged, IEquatable<TKey>
    {
        const int LookupOneByOneUpTo = 256;
        if (map.IsEmpty())
            return null;
        if (keys.Length <= LookupOneByOneUpTo)
        {
            var found = new Dictionary<TKey, FreezeEntry>();
            foreach (TKey key in keys)
                if (map.TryLookup(key, out FreezeEntry entry))
                    found[key] = entry;
            return found;
        }
        return map.LookupAll<TKey, FreezeEntry>().ToDictionary(e => e.Key, e => e.Value);
    }

    /// <summary>Deletes the keys that are present, in batches that skip absent ones.</summary>
    private static (int Deleted, List<TKey> Missing) DeletePresent<TKey>(BpfMap map, TKey[] keys) where TKey : unmanaged
    {
        var missing = new List<TKey>();
        int index = 0, deleted = 0;
        for (int round = 0; index < keys.Length && round <= keys.Length; round++)
        {
            try
            {
                map.DeleteBatch<TKey>(keys.AsSpan(index));
                deleted += keys.Length - index;
                index = keys.Length;
            }
            catch (BpfBatchException e) when (e.Errno == Errnos.ENOENT)
            {
                deleted += e.Processed;
                missing.Add(keys[index + e.Processed]);
                index += e.Processed + 1;
            }
        }
        return (deleted, missing);
    }

    private sealed class Insertion<TKey>(BpfMap map) where TKey : unmanaged, IEquatable<TKey>
    {
        public List<TKey> Created { get; } = [];
        public List<(TKey Key, FreezeEntry Old)> Replaced { get; } = [];
        public int CreatedCount => Created.Count;

        public void RollBack()
        {
            DeletePresent(map, Created.ToArray());
            foreach ((TKey key, FreezeEntry old) in Replaced)
                map.Update(key, old, MapUpdate.Any);
        }
    }
}
