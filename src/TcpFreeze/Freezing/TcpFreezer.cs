using TcpFreeze.Ebpf.Interop;
using Microsoft.Extensions.Logging;
using Interop;

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
/// <para>
/// The error contract, one rule for the whole library: a failure of the system (the kernel, the pins, the
/// namespace, privileges) leaves as a <see cref="TcpFreezeException"/>, with a kernel failure as its inner
/// exception; a mistake of the caller leaves as the .NET exception for it: argument exceptions for bad
/// arguments, <see cref="FormatException"/> from the Parse methods (TryParse never throws),
/// <see cref="ObjectDisposedException"/> naming <see cref="TcpFreezer"/> for a call after <see cref="Dispose"/>
/// or <see cref="Detach()"/>, and <see cref="OperationCanceledException"/> from the asynchronous calls.
/// Nothing else, and no internal type, ever leaves.
/// </para>
/// </summary>
/// <remarks>Thread safety: every member may be called from several threads at once; mutating calls take the pin root's lock (an exclusive flock), so they never interleave, with each other or with other processes. Dispose and the instance Detach end the instance: calls that race them may fail with <see cref="ObjectDisposedException"/>.</remarks>
public sealed partial class TcpFreezer : IDisposable
{
    private readonly FreezerMaps _maps;
    private readonly FreezerOptions _options;

    private readonly NamespacePins _pins;

    private TcpFreezer(FreezerOptions options, NamespacePins pins, FreezerMaps maps, IReadOnlyList<AttachedInterface> interfaces, IReadOnlyList<string>? unpinned = null,
        PinDirectoryUse? use = null)
    {
        _options = options;
        _pins = pins;
        _use = use ?? pins.TakeUse(options.LockTimeout);
        _maps = maps;
        AttachedInterfaces = interfaces;
        UnpinnedMaps = unpinned ?? [];
        _libbpfLog = options.CreateLogger(LibbpfLog.Category);
        Telemetry.Track(this);
    }

    private readonly Microsoft.Extensions.Logging.ILogger? _libbpfLog;

    /// <summary>This freezer's shared hold on its pin directory (see <see cref="PinDirectoryUse"/>); null if it could not be taken.</summary>
    private PinDirectoryUse? _use;

    /// <summary>The opened maps, for the telemetry's observable instruments.</summary>
    internal FreezerMaps Maps => _maps;

    /// <summary>The directory holding this namespace's pins.</summary>
    public string PinDirectory => _pins.Directory;

    /// <summary>The interfaces <see cref="Attach"/> attached to (empty after <see cref="Open"/>).</summary>
    public IReadOnlyList<AttachedInterface> AttachedInterfaces { get; }

    /// <summary>
    /// The maps this freezer reached through a TcpFreeze program (attached in the
    /// namespace or pinned) because their pins were missing; empty when every map
    /// came from its pin. Only <see cref="OpenForRecovery"/> sets it.
    /// </summary>
    public IReadOnlyList<string> UnpinnedMaps { get; }

    /// <summary>The connections map's capacity.</summary>
    /// <exception cref="ObjectDisposedException">This freezer was disposed or detached.</exception>
    public uint ConnectionCapacity => Run(() => _maps.Connections.Capacity);

    /// <summary>The pin directory of <paramref name="options"/>' namespace.</summary>
    /// <exception cref="TcpFreezeException">The namespace cannot be entered, or the pins cannot be read or removed; the message says which and what to do.</exception>
    public static string GetPinDirectory(FreezerOptions? options = null) => NamespacePins.For(options ?? new FreezerOptions()).Directory;

    /// <summary>Whether TcpFreeze's maps are pinned for <paramref name="options"/>' namespace.</summary>
    /// <exception cref="TcpFreezeException">The namespace cannot be entered, or the pins cannot be read or removed; the message says which and what to do.</exception>
    public static bool IsAttached(FreezerOptions? options = null) => NamespacePins.For(options ?? new FreezerOptions()).HasMaps;

    /// <summary>
    /// Loads (or reuses) the programs and maps of the namespace and attaches them to its
    /// interfaces. Calling it again is harmless: what is in place is kept, frozen
    /// entries included, and missing interfaces are added. An interface attached before
    /// with the other <see cref="FreezerOptions.IngressHook"/> is moved to this one,
    /// without leaving ingress unguarded (InterfaceAttacher explains how).
    /// </summary>
    /// <exception cref="TcpFreezeException">Bad options (unknown interface, nothing up), or the kernel refused (privileges, a foreign XDP program, bpffs).</exception>
    public static TcpFreezer Attach(FreezerOptions? options = null)
    {
        options ??= new FreezerOptions();
        return Run(options, "attach", operation =>
        {
            bool createdRoot = BpfFs.EnsureDirectory(options.PinRoot);
            try
            {
                TcpFreezer freezer = AttachTransaction.Run(options, a => new TcpFreezer(options, a.Pins, a.Maps, a.Interfaces, use: a.Use));
                operation.PinDirectory = freezer.PinDirectory;
                operation.Tag("tcpfreeze.interfaces", string.Join(",", freezer.AttachedInterfaces.Select(i => i.Name)));
                return freezer;
            }
            catch when (createdRoot)
            {
                // Leave no trace of a failed first attach (e.g. an unprivileged caller on a
                // bpffs that lets everyone create directories).
                NamespacePins.TryRemoveEmptyDirectory(options.PinRoot);
                throw;
            }
        });
    }

    // ---------------- the one operation wrapper ----------------
    // Every public operation runs through Run: libbpf's messages routed to the options' logger,
    // every failure of the system turned into a TcpFreezeException (Guard), and, for an operation
    // that changes something (it names a span), a span and a count and duration in the meter
    // (TcpFreezeTelemetry). The instance forms check disposal first. Each operation takes the
    // pin lock itself, inside: some take it only when the pin root exists.

    private static T Run<T>(ILogger? libbpfLog, Func<T> work)
    {
        using LibbpfLog.RouteScope route = LibbpfLog.Route(libbpfLog);
        return TcpFreezeException.Guard(work);
    }

    private static T Run<T>(ILogger? libbpfLog, string span, string? pinDirectory, Func<Telemetry.Operation, T> work)
    {
        using LibbpfLog.RouteScope route = LibbpfLog.Route(libbpfLog);
        using Telemetry.Operation operation = Telemetry.Start(span, pinDirectory);
        try
        {
            return TcpFreezeException.Guard(() => work(operation));
        }
        catch (Exception e)
        {
            operation.Fail(e);
            throw;
        }
    }

    private static T Run<T>(FreezerOptions options, Func<T> work) => Run(options.CreateLogger(LibbpfLog.Category), work);

    private static T Run<T>(FreezerOptions options, string span, Func<Telemetry.Operation, T> work) => Run(options.CreateLogger(LibbpfLog.Category), span, null, work);

    private T Run<T>(Func<T> work)
    {
        ThrowIfDisposed();
        return Run(_libbpfLog, work);
    }

    private T Run<T>(string span, Func<Telemetry.Operation, T> work)
    {
        ThrowIfDisposed();
        return Run(_libbpfLog, span, PinDirectory, work);
    }

    /// <summary>Opens the pinned state of a namespace that was attached before (by any process).</summary>
    /// <exception cref="TcpFreezeException">Nothing is attached there (<see cref="TcpFreezeRemedy.Attach"/>).</exception>
    public static TcpFreezer Open(FreezerOptions? options = null)
    {
        options ??= new FreezerOptions();
        NamespacePins pins = NamespacePins.For(options);
        // In use before the pins are checked: an idle detach either finished before (no pins: the
        // error below) or sees this process and keeps everything.
        PinDirectoryUse? use = pins.TakeUse(options.LockTimeout);
        if (!pins.HasMaps)
        {
            use?.Dispose();
            throw pins.WhyNoMaps(options);
        }
        try
        {
            return Run(options, () => new TcpFreezer(options, pins, pins.OpenMaps(), [], use: use));
        }
        catch
        {
            use?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Why this process cannot see what is under <paramref name="pinRoot"/> (permission denied on
    /// it, or on the folder above it that hides it, such as bpffs mounted with mode 0700), or null
    /// when it can see that nothing is there. A pin directory (PIN_ROOT/netns-COOKIE) may be given too.
    /// </summary>
    internal static string? PinRootUnreadable(string pinRoot) => NamespacePins.Unreadable(pinRoot);

    /// <summary>
    /// Looks at what TcpFreeze has left in a namespace, changing nothing: which of its
    /// pins exist and which of its programs are attached to which interfaces. Pins and
    /// attachments are read separately, because either can be gone without the other.
    /// </summary>
    /// <exception cref="TcpFreezeException">The namespace cannot be entered, or the pins cannot be read or removed; the message says which and what to do.</exception>
    public static AttachmentState Inspect(FreezerOptions? options = null)
    {
        options ??= new FreezerOptions();
        NamespacePins pins = NamespacePins.For(options);
        return Run(options, () => pins.Inspect(options));
    }

    /// <summary>
    /// Opens the frozen set from whatever is left, for thawing and listing: each map
    /// from its pin or, where the pin is gone, through the TcpFreeze programs attached
    /// in the namespace or pinned in its directory (a loaded program keeps its maps
    /// alive). <see cref="UnpinnedMaps"/> says which maps had no pin. Freezing through
    /// such a freezer works, but detaching and attaching again is the way back to a
    /// state other processes can open.
    /// </summary>
    /// <exception cref="TcpFreezeException">A map is neither pinned nor used by any TcpFreeze program, or the programs disagree on it.</exception>
    public static TcpFreezer OpenForRecovery(FreezerOptions? options = null)
    {
        options ??= new FreezerOptions();
        NamespacePins pins = NamespacePins.For(options);
        var unpinned = new List<string>();
        return Run(options, () => new TcpFreezer(options, pins, pins.OpenForRecovery(options, unpinned), [], unpinned));
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
    /// <param name="lease">
    /// How long the freeze lasts at most; null: the options' <see cref="FreezerOptions.DefaultLease"/>
    /// (120 s unless changed); <see cref="Lease.Forever"/>: until thawed.
    /// </param>
    /// <param name="timing">
    /// <see cref="FreezeTiming.Now"/> (the default) drops at once; <see cref="FreezeTiming.JustInTime"/>
    /// only while each key's local socket is in TCP repair mode or gone (a checkpoint's freeze).
    /// A key frozen already takes this call's timing, as it takes its lease.
    /// </param>
    /// <exception cref="ObjectDisposedException">This freezer was disposed or detached (every member but <see cref="Dispose"/> and the descriptive properties).</exception>
    /// <exception cref="TcpFreezeException">The kernel refused, or the pins are missing or unreadable; the message says which and what to do.</exception>
    /// <exception cref="ArgumentException">A key is the empty (default) key, or <paramref name="timing"/> is not a FreezeTiming value.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="lease"/> is neither positive nor <see cref="Lease.Forever"/>.</exception>
    public FreezeResult Freeze(IEnumerable<ConnectionKey> connections, IEnumerable<EndpointKey>? endpoints = null, TimeSpan? lease = null,
        FreezeTiming timing = FreezeTiming.Now)
    {
        ThrowIfDisposed();
        if (!Enum.IsDefined(timing))
            throw new ArgumentOutOfRangeException(nameof(timing), timing, "Not a FreezeTiming value.");
        ConnectionKey[] connectionKeys = Distinct(connections, nameof(connections));
        EndpointKey[] endpointKeys = Distinct(endpoints ?? [], nameof(endpoints));
        ulong deadline = 0, now = Libc.MonotonicNanoseconds();
        TimeSpan l = lease ?? _options.DefaultLease;
        if (!Lease.IsValid(l))
            throw new ArgumentOutOfRangeException(nameof(lease), l, "A lease must be positive; pass Lease.Forever for a freeze that lasts until thawed.");
        if (l != Lease.Forever)
            deadline = LeaseDeadline(now, l);

        return Run("freeze", operation =>
        {
            using PinLock pinLock = _pins.Lock(_options.LockTimeout);
            // A freeze must hold on every interface, not only on those an earlier attach reached.
            List<string> covered = connectionKeys.Length + endpointKeys.Length == 0
                ? []
                : InterfaceAttacher.EnsureCovered(_options, _pins, _maps.Connections.MapId);
            var (connectionInsert, endpointInsert) = _maps.Insert(connectionKeys, endpointKeys, deadline, now, timing);
            var result = new FreezeResult(connectionInsert.Created.Count, endpointInsert.Created.Count, connectionInsert.StillFrozen(now) + endpointInsert.StillFrozen(now))
            {
                ExpiredRemoved = connectionInsert.Swept + endpointInsert.Swept,
                InterfacesAttached = covered,
            };
            operation.Tag("tcpfreeze.connections", connectionKeys.Length);
            operation.Tag("tcpfreeze.endpoints", endpointKeys.Length);
            operation.Tag("tcpfreeze.already_frozen", result.AlreadyFrozen);
            return result;
        });
    }

    /// <summary>
    /// Extends the lease of keys that are frozen: each one present whose lease has not ended
    /// gets a lease of <paramref name="lease"/> from now (a key frozen without a lease keeps
    /// none). Keys that are not frozen, or whose lease has ended, stay as they are: a renewal
    /// never freezes again what was released. Used by whoever must keep a freeze from lapsing
    /// while something that takes an unknown time runs (the CRIU hook's dump watcher, while
    /// CRIU dumps).
    /// </summary>
    /// <returns>How many connections and endpoints were renewed.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="lease"/> is not positive.</exception>
    /// <exception cref="TcpFreezeException">The kernel refused a map operation.</exception>
    /// <exception cref="ObjectDisposedException">This freezer was disposed or detached (every member but <see cref="Dispose"/> and the descriptive properties).</exception>
    public int RenewLease(IEnumerable<ConnectionKey> connections, IEnumerable<EndpointKey>? endpoints, TimeSpan lease)
    {
        ThrowIfDisposed();
        if (lease <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(lease), lease, "A lease must be positive.");
        ConnectionKey[] connectionKeys = Distinct(connections, nameof(connections));
        EndpointKey[] endpointKeys = Distinct(endpoints ?? [], nameof(endpoints));
        return Run("renew", operation =>
        {
            using PinLock pinLock = _pins.Lock(_options.LockTimeout);
            ulong now = Libc.MonotonicNanoseconds(), deadline = LeaseDeadline(now, lease);
            int renewed = _maps.Endpoints.Renew(endpointKeys, deadline, now) + _maps.Connections.Renew(connectionKeys, deadline, now);
            operation.Tag("tcpfreeze.renewed", renewed);
            return renewed;
        });
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

    /// <summary>
    /// Thaws connections and endpoints. Keys that are not frozen are reported, not an error.
    /// With <paramref name="kick"/> (the default), the connections this call released that had
    /// data segments dropped get the resume kick, so that both ends retransmit at once instead
    /// of waiting out the back-off they built up while frozen (see docs/fast-resume.md).
    /// <paramref name="peerSequences"/> (optional) gives, for connections frozen elsewhere first
    /// (a restore on another host), the peer sequence numbers that host recorded
    /// (<see cref="FrozenConnection.PeerSequence"/>): a released connection whose peer this host
    /// has not yet seen retransmit is kicked with it. <paramref name="peerSegments"/> and
    /// <paramref name="localSegments"/> (optional) give, for such connections, the segments that host
    /// kept (<see cref="ReadPeerSegments"/>, <see cref="ReadLocalSegments"/>): a released connection
    /// for which this host kept none of its own has that one replayed (the peer's into the local
    /// socket, the local socket's to the peer). Entries for other keys are ignored.
    /// </summary>
    /// <exception cref="ObjectDisposedException">This freezer was disposed or detached (every member but <see cref="Dispose"/> and the descriptive properties).</exception>
    /// <exception cref="TcpFreezeException">The kernel refused, or the pins are missing or unreadable; the message says which and what to do.</exception>
    /// <exception cref="ArgumentException">A key is the empty (default) key.</exception>
    public ThawResult Thaw(IEnumerable<ConnectionKey> connections, IEnumerable<EndpointKey>? endpoints = null, bool kick = true,
        IReadOnlyDictionary<ConnectionKey, uint>? peerSequences = null, IReadOnlyDictionary<ConnectionKey, PeerSegment>? peerSegments = null,
        IReadOnlyDictionary<ConnectionKey, PeerSegment>? localSegments = null)
    {
        (ThawResult thawed, List<(ConnectionKey, FreezeEntry)> released, TakenReplays replays) = ThawKeys(connections, endpoints, kick, peerSequences);
        // The kick is its own operation, after the thaw's span: it only sends.
        return thawed with { Kick = Resume.ThawKick.Send(_options.Namespace, PinDirectory, released, replays, new Resume.SegmentsFromElsewhere(peerSegments, localSegments)) };
    }

    /// <summary>
    /// Thaws as <see cref="Thaw"/> with the kick on, but leaves the kick (and the replay of the segments the programs
    /// kept, taken from the maps by the thaw) to the caller: <see cref="PendingKick.Send()"/> sends it when the caller's
    /// latency-critical part is done. CRIU's agent answers pre-resume first, so that the tasks run again before
    /// thousands of kick messages go out. The kick needs this freezer's namespace and pin directory, not its open maps:
    /// it may be sent after the freezer is disposed. Sending it also deletes, from the maps pinned there, the segments
    /// the thaw took (freeing 2 KiB records costs the kernel milliseconds per thousand, so that too waits for the
    /// caller); a kick never sent leaves them until the connection is frozen again or the programs are detached. What a restore on another host brought (<paramref name="peerSequences"/>,
    /// <paramref name="peerSegments"/>, <paramref name="localSegments"/>, as in <see cref="Thaw"/>) may be given here
    /// or, so that finding it is off the critical path too, to
    /// <see cref="PendingKick.Send(IReadOnlyDictionary{ConnectionKey, uint}?, IReadOnlyDictionary{ConnectionKey, PeerSegment}?, IReadOnlyDictionary{ConnectionKey, PeerSegment}?)"/>.
    /// </summary>
    /// <exception cref="ObjectDisposedException">This freezer was disposed or detached.</exception>
    /// <exception cref="TcpFreezeException">The kernel refused, or the pins are missing or unreadable; the message says which and what to do.</exception>
    /// <exception cref="ArgumentException">A key is the empty (default) key.</exception>
    public (ThawResult Thawed, PendingKick Kick) ThawAndHoldKick(IEnumerable<ConnectionKey> connections, IEnumerable<EndpointKey>? endpoints = null,
        IReadOnlyDictionary<ConnectionKey, uint>? peerSequences = null, IReadOnlyDictionary<ConnectionKey, PeerSegment>? peerSegments = null,
        IReadOnlyDictionary<ConnectionKey, PeerSegment>? localSegments = null)
    {
        (ThawResult thawed, List<(ConnectionKey, FreezeEntry)> released, TakenReplays replays) =
            ThawKeys(connections, endpoints, kick: true, peerSequences, deferReplayDelete: true);
        NetworkNamespace ns = _options.Namespace;
        string pinDirectory = PinDirectory;
        return (thawed, new PendingKick((laterSequences, laterPeerSegments, laterLocalSegments) =>
        {
            if (laterSequences is not null)
                Resume.ThawKick.WithPeerSequences(released, laterSequences);
            try
            {
                return Resume.ThawKick.Send(ns, pinDirectory, released, replays,
                    new Resume.SegmentsFromElsewhere(laterPeerSegments ?? peerSegments, laterLocalSegments ?? localSegments));
            }
            finally
            {
                FreezerMaps.DeleteTaken(pinDirectory, replays);
            }
        }));
    }

    private (ThawResult Thawed, List<(ConnectionKey Key, FreezeEntry Entry)> Released, TakenReplays Replays) ThawKeys(
        IEnumerable<ConnectionKey> connections, IEnumerable<EndpointKey>? endpoints, bool kick, IReadOnlyDictionary<ConnectionKey, uint>? peerSequences,
        bool deferReplayDelete = false)
    {
        ThrowIfDisposed();
        ConnectionKey[] connectionKeys = Distinct(connections, nameof(connections));
        EndpointKey[] endpointKeys = Distinct(endpoints ?? [], nameof(endpoints));
        Thawing thawing = Run("thaw", operation =>
        {
            Thawing done;
            using (_pins.Lock(_options.LockTimeout))
                done = _maps.Thaw(connectionKeys, endpointKeys, forKick: kick, deferReplayDelete);
            if (peerSequences is not null)
                Resume.ThawKick.WithPeerSequences(done.Released, peerSequences);
            return Tagged(operation, done);
        });
        return (thawing.ToResult(), thawing.Released, thawing.Replays);
    }

    /// <summary>Thaws everything frozen in this namespace; <paramref name="kick"/> as in <see cref="Thaw"/>.</summary>
    /// <exception cref="ObjectDisposedException">This freezer was disposed or detached (every member but <see cref="Dispose"/> and the descriptive properties).</exception>
    /// <exception cref="TcpFreezeException">The kernel refused, or the pins are missing or unreadable; the message says which and what to do.</exception>
    public ThawResult ThawAll(bool kick = true)
    {
        Thawing thawing = Run("thaw", operation =>
        {
            Thawing done;
            using (AcquirePinLockForThaw())
                done = _maps.ThawAll(forKick: kick);
            return Tagged(operation, done);
        });
        return thawing.ToResult() with { Kick = Resume.ThawKick.Send(_options.Namespace, PinDirectory, thawing.Released, thawing.Replays, default) };
    }

    /// <summary>A thaw's counts on its span.</summary>
    private static Thawing Tagged(Telemetry.Operation operation, Thawing done)
    {
        operation.Tag("tcpfreeze.connections", done.Connections);
        operation.Tag("tcpfreeze.endpoints", done.Endpoints);
        return done;
    }

    /// <summary>
    /// The pin lock for a thaw. A freezer recovered without pins may find no pin root
    /// at all (someone removed it); then there is nothing to lock against, as in
    /// <see cref="Detach(FreezerOptions?)"/>.
    /// </summary>
    private PinLock? AcquirePinLockForThaw()
        => UnpinnedMaps.Count > 0 && !Directory.Exists(_options.PinRoot) ? null : _pins.Lock(_options.LockTimeout);

    /// <summary>The frozen connections with their drop counts and leases.</summary>
    /// <exception cref="ObjectDisposedException">This freezer was disposed or detached (every member but <see cref="Dispose"/> and the descriptive properties).</exception>
    /// <exception cref="TcpFreezeException">The kernel refused, or the pins are missing or unreadable; the message says which and what to do.</exception>
    public IReadOnlyList<FrozenConnection> ListConnections() => Run(() =>
    {
        ulong now = Libc.MonotonicNanoseconds();
        return _maps.Connections.ReadAll().Select(e => new FrozenConnection(e.Key, e.Value.Dropped, e.Value.Remaining(now))
        {
            PeerDataSegmentsDropped = e.Value.RemoteDataDrops,
            LocalDataSegmentsDropped = e.Value.LocalDataDrops,
            PeerSequence = e.Value.RemoteSequence,
            FirstDropNs = e.Value.FirstDropNs,
        }).ToList();
    });

    /// <summary>
    /// The peer's last data segment that each frozen connection of <paramref name="connections"/>
    /// dropped during its current freeze: what a thaw here would replay, read without taking it.
    /// For a restore on another host, which hands them to its <see cref="Thaw"/> as peerSegments.
    /// Connections that are not frozen, or whose peer sent no data during the freeze, are absent.
    /// </summary>
    /// <exception cref="ObjectDisposedException">This freezer was disposed or detached (every member but <see cref="Dispose"/> and the descriptive properties).</exception>
    /// <exception cref="TcpFreezeException">The kernel refused, or the pins are missing or unreadable; the message says which and what to do.</exception>
    /// <exception cref="ArgumentException">A key is the empty (default) key.</exception>
    public IReadOnlyDictionary<ConnectionKey, PeerSegment> ReadPeerSegments(IEnumerable<ConnectionKey> connections)
        => ReadSegments(connections, peer: true, local: false).Peer;

    /// <summary>
    /// The mirror of <see cref="ReadPeerSegments"/>: the last data segment the local socket of each
    /// frozen connection of <paramref name="connections"/> sent that the freeze dropped during its
    /// current freeze (a reply caught on its way out), read without taking it. For a restore on
    /// another host, which hands them to its <see cref="Thaw"/> as localSegments and so sends them
    /// to the peers at once instead of leaving them to the restored sockets' own timers. Each segment's
    /// TCP timestamp is set back to the connection's first drop (see RESUME.md, "The mirror": a socket
    /// retransmits in CRIU's repair mode after CRIU read its clock). Connections that are not frozen,
    /// or whose local socket sent no data during the freeze, are absent.
    /// </summary>
    /// <exception cref="ObjectDisposedException">This freezer was disposed or detached (every member but <see cref="Dispose"/> and the descriptive properties).</exception>
    /// <exception cref="TcpFreezeException">The kernel refused, or the pins are missing or unreadable; the message says which and what to do.</exception>
    /// <exception cref="ArgumentException">A key is the empty (default) key.</exception>
    public IReadOnlyDictionary<ConnectionKey, PeerSegment> ReadLocalSegments(IEnumerable<ConnectionKey> connections)
        => ReadSegments(connections, peer: false, local: true).Local;

    /// <summary>
    /// <see cref="ReadPeerSegments"/> and <see cref="ReadLocalSegments"/> in one: the frozen set is read once for
    /// both (for thousands of connections, a read of the whole map, which costs about a millisecond at the default
    /// capacity).
    /// </summary>
    /// <exception cref="ObjectDisposedException">This freezer was disposed or detached (every member but <see cref="Dispose"/> and the descriptive properties).</exception>
    /// <exception cref="TcpFreezeException">The kernel refused, or the pins are missing or unreadable; the message says which and what to do.</exception>
    /// <exception cref="ArgumentException">A key is the empty (default) key.</exception>
    public (IReadOnlyDictionary<ConnectionKey, PeerSegment> Peer, IReadOnlyDictionary<ConnectionKey, PeerSegment> Local) ReadSegments(
        IEnumerable<ConnectionKey> connections)
    {
        (Dictionary<ConnectionKey, PeerSegment> peer, Dictionary<ConnectionKey, PeerSegment> local) = ReadSegments(connections, peer: true, local: true);
        return (peer, local);
    }

    /// <summary>
    /// <see cref="ReadSegments(IEnumerable{ConnectionKey})"/> for connections as <see cref="ListConnections"/> just
    /// listed them: which freeze a kept segment belongs to is judged by the listing, so the frozen set is not read a
    /// second time (for thousands of connections, about a millisecond saved where every one counts, as in CRIU's
    /// post-dump). Give a fresh listing: a connection thawed and frozen again since is judged by its old freeze.
    /// </summary>
    /// <exception cref="ObjectDisposedException">This freezer was disposed or detached (every member but <see cref="Dispose"/> and the descriptive properties).</exception>
    /// <exception cref="TcpFreezeException">The kernel refused, or the pins are missing or unreadable; the message says which and what to do.</exception>
    /// <exception cref="ArgumentException">A listed connection is the empty (default) key.</exception>
    public (IReadOnlyDictionary<ConnectionKey, PeerSegment> Peer, IReadOnlyDictionary<ConnectionKey, PeerSegment> Local) ReadSegments(
        IEnumerable<FrozenConnection> listed)
    {
        ArgumentNullException.ThrowIfNull(listed);
        Dictionary<ConnectionKey, FreezeEntry> entries = [];
        foreach (FrozenConnection connection in listed)
            entries[connection.Key] = new FreezeEntry { FirstDropNs = connection.FirstDropNs };
        (Dictionary<ConnectionKey, PeerSegment> peer, Dictionary<ConnectionKey, PeerSegment> local) =
            ReadSegments(entries.Keys, peer: true, local: true, entries);
        return (peer, local);
    }

    private (Dictionary<ConnectionKey, PeerSegment> Peer, Dictionary<ConnectionKey, PeerSegment> Local) ReadSegments(
        IEnumerable<ConnectionKey> connections, bool peer, bool local, Dictionary<ConnectionKey, FreezeEntry>? listed = null)
    {
        ThrowIfDisposed();
        ConnectionKey[] keys = Distinct(connections, nameof(connections));
        return Run(() => Resume.KeptSegments.Read(_maps, keys, peer, local, listed));
    }

    /// <summary>The frozen endpoints with their drop counts and leases.</summary>
    /// <exception cref="ObjectDisposedException">This freezer was disposed or detached (every member but <see cref="Dispose"/> and the descriptive properties).</exception>
    /// <exception cref="TcpFreezeException">The kernel refused, or the pins are missing or unreadable; the message says which and what to do.</exception>
    public IReadOnlyList<FrozenEndpoint> ListEndpoints() => Run(() =>
    {
        ulong now = Libc.MonotonicNanoseconds();
        return _maps.Endpoints.ReadAll().Select(e => new FrozenEndpoint(e.Key, e.Value.Dropped, e.Value.Remaining(now))).ToList();
    });

    /// <summary>Deletes entries whose lease has ended (the kernel already ignores them). Returns how many.</summary>
    /// <exception cref="ObjectDisposedException">This freezer was disposed or detached (every member but <see cref="Dispose"/> and the descriptive properties).</exception>
    /// <exception cref="TcpFreezeException">The kernel refused, or the pins are missing or unreadable; the message says which and what to do.</exception>
    public int RemoveExpired() => Run(() =>
    {
        using PinLock pinLock = _pins.Lock(_options.LockTimeout);
        ulong now = Libc.MonotonicNanoseconds();
        int removed = _maps.Connections.RemoveExpired(now) + _maps.Endpoints.RemoveExpired(now);
        _maps.CloseEndpointGateIfEmpty();
        return removed;
    });

    /// <summary>Packet counters summed over CPUs, and how much is frozen.</summary>
    /// <exception cref="ObjectDisposedException">This freezer was disposed or detached (every member but <see cref="Dispose"/> and the descriptive properties).</exception>
    /// <exception cref="TcpFreezeException">The kernel refused, or the pins are missing or unreadable; the message says which and what to do.</exception>
    public FreezerStatistics GetStatistics() => Run(_maps.ReadStatistics);

    /// <summary>Detaches this namespace's programs and removes its pins (see the static <see cref="Detach(FreezerOptions?)"/>).</summary>
    /// <exception cref="ObjectDisposedException">This freezer was disposed or detached (every member but <see cref="Dispose"/> and the descriptive properties).</exception>
    /// <exception cref="TcpFreezeException">The kernel refused, or the pins are missing or unreadable; the message says which and what to do.</exception>
    public DetachResult Detach()
    {
        ThrowIfDisposed();
        Dispose();
        return Detach(_options);
    }

    /// <summary>
    /// Detaches TcpFreeze's programs from every interface of the namespace and removes
    /// its pins, whatever state they are in: it also removes TcpFreeze programs whose
    /// pins are gone, and pins whose programs someone else detached. Frozen
    /// connections flow again. Programs of other tools are never touched.
    /// </summary>
    /// <exception cref="TcpFreezeException">The namespace cannot be entered, or the pins cannot be read or removed; the message says which and what to do.</exception>
    public static DetachResult Detach(FreezerOptions? options = null)
    {
        options ??= new FreezerOptions();
        return Run(options, "detach", operation =>
        {
            // The pins are root's: to anyone else they look absent, and "nothing was attached" would be wrong.
            NamespacePins pins = NamespacePins.For(options);
            if (NamespacePins.Unreadable(pins.Directory) is { } denied)
                throw new TcpFreezeException("detach", denied);
            using PinLock? pinLock = Directory.Exists(options.PinRoot) ? pins.Lock(options.LockTimeout) : null;
            operation.PinDirectory = pins.Directory;
            return DetachLocked(options, pins);
        });
    }

    /// <summary>
    /// Detaches like <see cref="Detach(FreezerOptions?)"/>, but only when nothing is frozen
    /// any more (entries whose lease ended do not count and are removed); the check and
    /// the detach happen under one lock, so a freeze by another process cannot slip in
    /// between. Returns null when something is still frozen, or another process has this frozen set open
    /// (a shared lock on the set's pin directory says so: it may be about to freeze), and everything was kept.
    /// </summary>
    /// <exception cref="ObjectDisposedException">This freezer was disposed or detached (every member but <see cref="Dispose"/> and the descriptive properties).</exception>
    /// <exception cref="TcpFreezeException">The kernel refused, or the pins are missing or unreadable; the message says which and what to do.</exception>
    public DetachResult? DetachIfIdle() => Run(() =>
    {
        using PinLock pinLock = _pins.Lock(_options.LockTimeout);
        ulong now = Libc.MonotonicNanoseconds();
        bool active = _maps.Connections.ReadAll().Any(e => e.Value.Remaining(now) != TimeSpan.Zero)
                      || _maps.Endpoints.ReadAll().Any(e => e.Value.Remaining(now) != TimeSpan.Zero);
        if (active)
            return null;
        Dispose();
        // Another process's freezer is open on this set (a migration that attached and is about to
        // freeze): keep everything for it; the last user's idle detach removes it.
        if (PinDirectoryUse.IsUsedByOthers(PinDirectory, out PinDirectoryUse? exclusive))
            return null;
        using PinDirectoryUse? held = exclusive;
        using Telemetry.Operation operation = Telemetry.Start("detach", PinDirectory);
        return DetachLocked(_options, _pins);
    });

    private static DetachResult DetachLocked(FreezerOptions options, NamespacePins pins)
    {
        List<string> detached = InterfaceAttacher.DetachAll(options, pins);
        return new DetachResult(detached, pins.Remove());
    }

    /// <summary>
    /// Removes the pins of network namespaces that no longer exist, under
    /// <paramref name="pinRoot"/> (default <see cref="FreezerOptions.DefaultPinRoot"/>): a
    /// deleted namespace leaves its netns-COOKIE directory, and the programs and maps its
    /// pins keep loaded, where no <see cref="FreezerOptions.Namespace"/> can name it any more.
    /// A directory is kept when its cookie is that of any namespace still reachable (a
    /// process's thread or descriptor, /run/netns, an nsfs mount in any mount namespace;
    /// DeadNamespacePins says how). Files TcpFreeze did not create stay, and with them
    /// their directory.
    /// It waits at most <paramref name="lockTimeout"/> (default <see cref="FreezerOptions.DefaultLockTimeout"/>) for another
    /// process that holds the pin root's lock, as <see cref="FreezerOptions.LockTimeout"/> does for the other operations.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="lockTimeout"/> is negative.</exception>
    /// <exception cref="TcpFreezeException">The lock was not free in time (the message names its holder), the namespace cannot be entered, or the pins cannot be read or removed; the message says which and what to do.</exception>
    public static DeadNamespaceCleanup RemoveDeadNamespaces(string? pinRoot = null, TimeSpan? lockTimeout = null)
    {
        TimeSpan wait = lockTimeout ?? FreezerOptions.DefaultLockTimeout;
        ArgumentOutOfRangeException.ThrowIfLessThan(wait, TimeSpan.Zero, nameof(lockTimeout));
        pinRoot ??= FreezerOptions.DefaultPinRoot;
        string root = Path.GetFullPath(pinRoot);
        return Run(libbpfLog: null, () => DeadNamespacePins.RemoveUnder(root, wait));
    }

    /// <summary>
    /// Closes this process's map descriptors; the pinned state stays. Calling it again does nothing.
    /// Afterwards every member throws <see cref="ObjectDisposedException"/> naming <see cref="TcpFreezer"/>, except
    /// this one and the properties that only describe it (<see cref="PinDirectory"/>, <see cref="AttachedInterfaces"/>,
    /// <see cref="UnpinnedMaps"/>), which keep their values.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        Telemetry.Forget(this);
        _maps.Dispose();
        _use?.Dispose();
        _use = null;
    }

    private int _disposed;

    /// <summary>The one disposal check: the public exception names this type, never an internal descriptor type.</summary>
    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    private static T[] Distinct<T>(IEnumerable<T> keys, string parameter) where T : struct, IEquatable<T>
    {
        ArgumentNullException.ThrowIfNull(keys, parameter);
        T[] array = keys.Distinct().ToArray();
        if (array.Contains(default))
            throw new ArgumentException("An empty (default) key was given; build keys from endpoints or parse them from text.", parameter);
        return array;
    }
}

internal static partial class Log
{
    [LoggerMessage(Level = LogLevel.Warning, Message = "Rolling back a failed attach also failed; detach to clean up")]
    public static partial void LogRollbackFailure(this ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Moving TcpFreeze's ingress program on {Interface} left the old hook attached too (harmless: both drop the same packets); attach again to retry")]
    public static partial void LogIngressMoveFailure(this ILogger logger, Exception exception, string @interface);
}
