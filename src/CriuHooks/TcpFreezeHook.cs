using System.Diagnostics;

namespace TcpFreeze.CriuHooks;

/// <summary>
/// TcpFreeze's CRIU handlers. For a task tree in CRIU's own network namespace (the host
/// case, where CRIU would otherwise add iptables rules per connection):
/// <list type="bullet">
/// <item>pre-dump: refuse a tree another process holds through ptrace; attach if needed,
/// freeze the tree's listening endpoints just in time, then its connections now, with a
/// lease; write the manifest into the images; start the dump watcher, which renews the
/// lease while CRIU holds the tasks and thaws at once if CRIU ends while the tasks still
/// run (--leave-running, an iterative pre-dump, or a failed dump).</item>
/// <item>post-dump: the tasks are frozen; fail the dump if pre-dump's freeze lapsed; connections they opened since pre-dump are
/// frozen too and added to the manifest.</item>
/// <item>pre-restore: read the manifest, attach in this namespace (maybe another host),
/// freeze exactly its connections and endpoints just in time before any socket is restored
/// (each flows again the moment CRIU takes its socket out of repair mode).</item>
/// <item>pre-resume: thaw exactly what the manifest lists. This runs after CRIU's own
/// unlock point in iptables mode (right after the post-restore scripts) and after the
/// sockets left repair mode, just before the tasks run again.</item>
/// <item>post-resume: detaches when nothing else is frozen (unless keep-attached), now that
/// the tasks run (should CRIU die before post-resume, the restore watcher pre-restore started does it); and a safety net, since CRIU resumes the tasks even when pre-resume
/// fails: thaws whatever of the manifest is still frozen (for a tree in a namespace of
/// its own: releases the whole-namespace lock if network-unlock did not).</item>
/// </list>
/// For a tree in a network namespace of its own (a container with its own network, a
/// pod), CRIU would lock that namespace as a whole, but <c>network-lock skip</c> turns
/// that off as well, so the hook takes the whole-namespace lock itself
/// (an nft table in it): at network-lock (dump), again at setup-namespaces
/// (restore: the namespace may be a new one, before any socket is restored), and it
/// releases it at network-unlock (after a restore, a failed dump or --leave-running).
/// The manifest records that case, and the dump watcher releases the lock should CRIU
/// die while the tasks still run.
/// Each step is all or nothing: when it fails it undoes what it froze and exits non-zero.
/// </summary>
public static class TcpFreezeHook
{
    /// <summary>The pre-dump handler.</summary>
    public static int PreDump(CriuEnvironment environment, HookContext context)
    {
        if (IsPreDumpRound(context, "pre-dump"))
            return 0;
        int pid = environment.InitPid ?? throw new HookException("CRTOOLS_INIT_PID is not set at pre-dump; cannot tell which process tree is being dumped");
        string images = environment.ImageDirectory ?? throw new HookException("CRTOOLS_IMAGE_DIR is not set at pre-dump; there is nowhere to write the manifest");
        var phases = new StepTimer();
        HookSettings settings = context.Settings;

        if (!SharesNetworkNamespace(pid))
        {
            FreezeManifest own = FreezeManifest.Create(pid, settings.Lease, [], []) with { OwnNetworkNamespace = true };
            byte[] ownJson = own.ToJson();
            FreezeManifest.WriteJson(images, FreezeManifest.FileName, ownJson);
            string ownWatcher = DumpWatcher.TryStart(context, pid, own, ownJson);
            context.Info($"pre-dump: PID {pid} has a network namespace of its own, which the hook locks as a whole at network-lock; " +
                         $"nothing to freeze per connection; {ownWatcher}");
            return 0;
        }

        // A tree that another process holds through ptrace is being dumped by another CRIU (or
        // debugged): this dump cannot seize it, and its freeze and dump watcher must not touch what
        // that dump holds. Refused before anything is frozen.
        DiscoveredSockets sockets = ProcessSockets.Discover(pid);
        phases.Mark("discover");
        if (DumpedTree.FindOtherTracer(sockets.Pids, context.CriuPid) is { } tracer)
            throw new HookException($"pre-dump: {tracer}; this dump could not seize it, so nothing was frozen. " +
                                    "Wait for the other dump to end (or detach the debugger), then dump again");
        using TcpFreezer freezer = TcpFreezer.Attach(settings.ToFreezerOptions());
        phases.Mark("attach");

        // Connections the tasks open or accept before CRIU freezes them are caught at post-dump.
        // The tree's own connections are frozen now: nothing reaches them between here and CRIU's
        // dump of each, so a task that CRIU leaves running with its sockets still in repair mode (CRIU
        // killed mid-dump, a failed lazy-pages transfer) finds no data queued that it would read as
        // EPERM and drop the connection for before the dump watcher releases them. The listening
        // endpoints are frozen just in time: a live listener, the tree's own until CRIU kills it or
        // another process's on the same port (a SO_REUSEPORT sibling, an IPv4 server beside an
        // IPv6-only one), is never held, nor are that other process's connections on the port, and a
        // connection left in a dumped listener's accept queue gets its reset out to the client; once
        // the listener is gone, SYNs to it wait (dropped) for the restore instead of being refused.
        freezer.Freeze([], sockets.Listeners, settings.Lease, FreezeTiming.JustInTime);
        try
        {
            freezer.Freeze(sockets.Connections, [], settings.Lease, FreezeTiming.Now);
        }
        catch
        {
            freezer.Thaw([], sockets.Listeners, kick: false);
            throw;
        }
        phases.Mark("freeze");

        FreezeManifest manifest = FreezeManifest.Create(pid, settings.Lease, sockets.Connections, sockets.Listeners);
        // Serialized once: the same bytes go into the images, the watcher's state file and the watcher.
        byte[] json = manifest.ToJson();
        try
        {
            FreezeManifest.WriteJson(images, FreezeManifest.FileName, json);
            FreezeManifest.Remember(json, manifest); // a resident agent's post-dump reads these bytes back
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            freezer.Thaw(sockets.Connections, sockets.Listeners);
            throw new HookException($"could not write {FreezeManifest.FileName} into the images directory ({e.Message}); thawed everything again");
        }

        phases.Mark("manifest");
        string watcher = DumpWatcher.TryStart(context, pid, manifest, json, phases);
        context.Info($"pre-dump: froze {sockets.Connections.Count} connections and {sockets.Listeners.Count} listening endpoints " +
                     "(the endpoints just in time) " +
                     $"of PID {pid} ({sockets.Pids.Count} processes) {phases}, lease {settings.Lease.TotalSeconds:F0} s; {watcher}");
        return 0;
    }

    /// <summary>
    /// The post-dump handler: the tasks are frozen now, so a last look finds connections
    /// they opened after pre-dump; those are frozen too and added to the manifest.
    /// The freeze itself is kept: CRIU kills the tasks next (a migration), or the dump
    /// watcher thaws everything once CRIU ends with the tasks still running.
    /// </summary>
    public static int PostDump(CriuEnvironment environment, HookContext context)
    {
        if (IsPreDumpRound(context, "post-dump"))
            return 0;
        var phases = new StepTimer();
        FreezeManifest manifest = ReadManifest(environment, "post-dump");
        if (manifest.OwnNetworkNamespace)
            return 0;
        int pid = environment.InitPid ?? manifest.InitPid;
        phases.Mark("read");
        DiscoveredSockets now = ProcessSockets.Discover(pid);
        phases.Mark("discover");
        HashSet<ConnectionKey> known = [.. manifest.ConnectionKeys()];
        HashSet<EndpointKey> knownEndpoints = [.. manifest.EndpointKeys()];
        ConnectionKey[] added = now.Connections.Where(c => !known.Contains(c)).ToArray();
        EndpointKey[] addedEndpoints = now.Listeners.Where(e => !knownEndpoints.Contains(e)).ToArray();
        using TcpFreezer freezer = TcpFreezer.Open(context.Settings.ToFreezerOptions());
        IReadOnlyList<FrozenConnection> frozen = freezer.ListConnections();
        // The freeze must have held through the whole dump: an entry that lapsed (its lease ended
        // with no dump watcher to renew it, or someone thawed it) let peers' segments through while
        // CRIU held the socket in repair mode, after it had read its queues; such a connection cannot
        // come back intact. Failing here makes CRIU give the tasks their sockets back and run on.
        HashSet<ConnectionKey> held = [.. frozen.Where(c => !c.IsExpired).Select(c => c.Key)];
        ConnectionKey[] lapsed = manifest.ConnectionKeys().Where(k => !held.Contains(k)).ToArray();
        if (lapsed.Length > 0)
            throw new HookException(
                $"post-dump: {lapsed.Length} of the {known.Count} connections pre-dump froze were no longer frozen (e.g. {lapsed[0]}): the lease of " +
                $"{manifest.LeaseSeconds:0.###} s ended during the dump without a dump watcher to renew it, or something thawed them. Peers' segments " +
                "may have reached those sockets after CRIU had read their queues, so they could not be restored intact; failing the dump, so that " +
                "CRIU leaves the tasks running with their connections. Dump again (with a longer lease if the watcher could not start)");
        phases.Mark("check");
        if (addedEndpoints.Length > 0)
            freezer.Freeze([], addedEndpoints, context.Settings.Lease, FreezeTiming.JustInTime);
        if (added.Length > 0)
            freezer.Freeze(added, [], context.Settings.Lease, FreezeTiming.Now);
        phases.Mark("freeze");
        // The tasks are frozen and their sockets dumped: what the programs recorded of the peers
        // so far travels with the images, for a resume kick on another host (see FreezeManifest.PeerSequences).
        Dictionary<string, uint> peerSequences = frozen
            .Where(c => c.PeerSequence is not null && known.Contains(c.Key))
            .ToDictionary(c => c.Key.ToString(), c => c.PeerSequence!.Value);
        // And the peers' last dropped segments, for the replay there (see FreezeManifest.PeerSegments):
        // only of the connections frozen since pre-dump, bounded so the manifest stays small.
        // And the local sockets' own (replies the freeze caught on their way out), for the mirror
        // there (see FreezeManifest.LocalSegments), with a budget of their own. Both in one read.
        (IReadOnlyDictionary<ConnectionKey, PeerSegment> peerRead, IReadOnlyDictionary<ConnectionKey, PeerSegment> localRead) =
            freezer.ReadSegments(frozen.Where(c => known.Contains(c.Key)));
        Dictionary<string, PeerSegment> peerSegments = FreezeManifest.BoundedPeerSegments(manifest.ConnectionKeys(), peerRead);
        Dictionary<string, PeerSegment> localSegments = FreezeManifest.BoundedPeerSegments(manifest.ConnectionKeys(), localRead);
        phases.Mark("peers");
        FreezeManifest updated = manifest with
        {
            Connections = added.Length == 0 ? manifest.Connections : [.. manifest.Connections, .. added.Select(c => c.ToString())],
            Endpoints = addedEndpoints.Length == 0 ? manifest.Endpoints : [.. manifest.Endpoints, .. addedEndpoints.Select(e => e.ToString())],
            PeerSequences = peerSequences,
            PeerSegments = peerSegments.Count == 0 ? null : peerSegments,
            LocalSegments = localSegments.Count == 0 ? null : localSegments,
        };
        byte[] json = updated.ToJson();
        FreezeManifest.WriteJson(environment.ImageDirectory!, FreezeManifest.FileName, json);
        FreezeManifest.Remember(json, updated); // a resident agent's pre-restore on this host reads these bytes back
        phases.Mark("manifest");
        // The watcher's state names what to thaw should CRIU end with the tasks running: only new connections change it.
        if (added.Length > 0 || addedEndpoints.Length > 0)
            HookStateStore.UpdateDumpState(context, pid, json);
        phases.Mark("state");
        context.Info(added.Length == 0 && addedEndpoints.Length == 0
            ? $"post-dump: no connection appeared since pre-dump; recorded {peerSequences.Count} peer sequence numbers, " +
              $"{peerSegments.Count} peer segments and {localSegments.Count} local segments {phases}; the freeze holds until the restore"
            : $"post-dump: froze {added.Length} connections and {addedEndpoints.Length} listening endpoints that appeared since pre-dump, " +
              $"recorded {peerSequences.Count} peer sequence numbers, {peerSegments.Count} peer segments and {localSegments.Count} local segments {phases}");
        return 0;
    }

    /// <summary>
    /// The pre-restore handler: freezes, just in time, exactly the connections and endpoints the
    /// manifest lists, before any socket is restored. A just-in-time entry drops only the packets
    /// of a socket that is in repair mode or absent, so no manifest, wrong or hostile, can hold a
    /// live socket of another process: a listener of someone else on a listed endpoint (a
    /// SO_REUSEPORT sibling, an IPv4 server beside the dumped IPv6-only one) keeps serving. Only
    /// a live socket with the very 4-tuple of a listed connection is refused, naming the process
    /// that holds it: the restore would collide with it.
    /// </summary>
    public static int PreRestore(CriuEnvironment environment, HookContext context)
    {
        var phases = new StepTimer();
        FreezeManifest manifest = ReadManifest(environment, "pre-restore");
        if (manifest.OwnNetworkNamespace)
        {
            context.Info("pre-restore: the dumped tree had a network namespace of its own, which the hook locks as a whole at setup-namespaces; nothing to freeze per connection");
            return 0;
        }
        ConnectionKey[] connections = manifest.ConnectionKeys();
        EndpointKey[] endpoints = manifest.EndpointKeys();
        phases.Mark("read");
        IReadOnlyList<LiveSocket> live = ProcessSockets.FindCollisions(connections, endpoints);
        LiveSocket[] taken = live.Where(t => t.Remote is not null).ToArray();
        LiveSocket[] squatters = live.Where(t => t.Remote is null).ToArray();
        phases.Mark("check");
        if (taken.Length > 0)
            throw new HookException(
                $"the manifest names connections that {taken.Length} live sockets of this network namespace already are, e.g. " +
                string.Join("; ", taken.Take(3).Select(t => $"{t}{SocketHolders.Describe(t.Inode)}")) +
                ". They are not the restore's (its sockets do not exist yet), and the restore would collide with them; froze nothing. " +
                "Stop what holds them (a restore retried after a killed one: the process named above is what that restore left), then restore again");

        // Someone else listening where the restore brings a listener back is not held (the freeze is just
        // in time), but CRIU's restore of that listener fails unless both use SO_REUSEPORT: say who it is.
        foreach (LiveSocket squatter in squatters.Take(3))
            context.Info($"pre-restore: note: {squatter}{SocketHolders.Describe(squatter.Inode)} listens where the restore brings back the listener {squatter.Listed}; " +
                         "its clients are not held, and CRIU's restore of that listener fails (address in use) unless both sockets use SO_REUSEPORT");
        FreezerOptions options = context.Settings.ToFreezerOptions();
        bool sameNamespace = manifest.WasDumpedIn(options.Namespace);
        bool pinsBefore = TcpFreezer.IsAttached(options);
        using TcpFreezer freezer = TcpFreezer.Attach(options);
        phases.Mark("attach");
        FreezeResult result = freezer.Freeze(connections, endpoints, context.Settings.Lease, FreezeTiming.JustInTime);
        phases.Mark("freeze");
        HookStateStore.TrySave(context, HookStateStore.RestoreStatePath(context.CriuPid), manifest, "should pre-resume fail, post-resume cannot thaw: the lease will");
        phases.Mark("state");
        // Started here, not at pre-resume, which runs while the restored tasks wait (see RestoreWatcher).
        string watcher = context.Settings.KeepAttached ? "" : "; " + RestoreWatcher.TryStart(context);
        phases.Mark("watcher");
        context.Info($"pre-restore: froze {manifest.Connections.Count} connections and {manifest.Endpoints.Count} listening endpoints " +
                     $"from the manifest, just in time ({result.AlreadyFrozen} were still frozen from the dump) {phases}" +
                     InterfaceReport(freezer, result, sameNamespace && pinsBefore) +
                     $"; should this restore fail, they stay frozen (only packets of sockets that do not exist) until their lease ends in " +
                     $"{context.Settings.Lease.TotalSeconds:0.###} s or a retried restore thaws them (`tcpfreeze thaw --all` releases them at once)" + watcher);
        int lapsed = connections.Length + endpoints.Length - result.AlreadyFrozen;
        if (sameNamespace && lapsed > 0)
            context.Info($"pre-restore: warning: this is the namespace the dump froze, yet {lapsed} of its {connections.Length + endpoints.Length} entries were no longer frozen: " +
                         (pinsBefore
                             ? $"their lease ended, or someone thawed them, since the dump. While not frozen, a segment a peer sent to one of them found " +
                               "no socket and the kernel answered it with a reset: a connection whose peer sent nothing in that gap (idle, or backing off) " +
                               "is intact, one whose peer did is reset and its peer has closed it (its client sees ECONNRESET; `tcpfreeze list` after the " +
                               "restore shows no drops for it). They are frozen again and the restore goes on; use a lease that covers the whole copy " +
                               "(lease = SECONDS in the settings file)"
                             : $"the dump's pins under {freezer.PinDirectory} are gone (bpffs unmounted or the pins deleted after the dump; its programs, still attached, were replaced). " +
                               "Peers that sent data meanwhile may have had those connections reset; they are frozen again and the restore goes on"));
        return 0;
    }

    /// <summary>The pre-resume handler: thaws exactly what the manifest lists.</summary>
    public static int PreResume(CriuEnvironment environment, HookContext context)
    {
        var phases = new StepTimer();
        FreezeManifest manifest = ReadManifest(environment, "pre-resume");
        if (manifest.OwnNetworkNamespace)
            return 0;
        phases.Mark("read");
        using TcpFreezer freezer = TcpFreezer.Open(context.Settings.ToFreezerOptions());
        ThawResult result;
        string later = "";
        if (context.Settings.Kick && context.AfterAnswer is { } afterAnswer)
        {
            // The agent thaws now (taking the segments the programs kept) and does the rest once CRIU has this answer,
            // while the tasks run again: which connections were restored (for what another host sent along) and the kick.
            (result, PendingKick kick) = freezer.ThawAndHoldKick(manifest.ConnectionKeys(), manifest.EndpointKeys());
            afterAnswer.Add(() =>
            {
                (Dictionary<ConnectionKey, uint>? peers, Dictionary<ConnectionKey, PeerSegment>? segments, Dictionary<ConnectionKey, PeerSegment>? localSegments) =
                    RestoredOnly(manifest.PeerSequenceKeys(), manifest.PeerSegmentKeys(), manifest.LocalSegmentKeys());
                return KickReport(kick.Send(peers, segments, localSegments)) is { Length: > 0 } report
                    ? $"pre-resume (CRIU {context.CriuPid}): {report.TrimStart(';', ' ')}"
                    : $"pre-resume (CRIU {context.CriuPid}): no connection needed the resume kick";
            });
            later = "; the agent sends the resume kick once CRIU has this answer";
            phases.Mark("thaw");
        }
        else
        {
            Dictionary<ConnectionKey, uint>? peers = null;
            Dictionary<ConnectionKey, PeerSegment>? segments = null, localSegments = null;
            if (context.Settings.Kick)
                (peers, segments, localSegments) = RestoredOnly(manifest.PeerSequenceKeys(), manifest.PeerSegmentKeys(), manifest.LocalSegmentKeys());
            phases.Mark("peers");
            result = freezer.Thaw(manifest.ConnectionKeys(), manifest.EndpointKeys(), context.Settings.Kick, peers, segments, localSegments);
            phases.Mark(context.Settings.Kick ? "thaw and kick" : "thaw");
        }
        int missing = result.NotFrozenConnections.Count + result.NotFrozenEndpoints.Count;
        HookStateStore.TryRemove(HookStateStore.RestoreStatePath(context.CriuPid));
        phases.Mark("state");
        // Detaching (when keep-attached is off) waits for post-resume: the tasks are running by
        // then, so the netlink and bpffs work is no longer part of their downtime.
        context.Info($"pre-resume: thawed {result.ConnectionsThawed} connections and {result.EndpointsThawed} listening endpoints " +
                     $"{phases}" + (missing > 0 ? $"; {missing} listed in the manifest were no longer frozen (lease ended?)" : "") +
                     KickReport(result.Kick) + later);
        return 0;
    }

    /// <summary>
    /// The post-resume handler, a safety net: CRIU ignores a failing pre-resume script and
    /// resumes the tasks anyway, so if pre-resume was killed or failed before its thaw, the
    /// connections would stay frozen until the lease ends. pre-restore left the manifest in
    /// the hook's runtime folder, /run/tcpfreeze (CRIU closes the images directory before
    /// post-resume) and pre-resume removes it once it has thawed; if it is still there,
    /// this thaws what it lists. Normally there is nothing to do, and it says nothing.
    /// </summary>
    public static int PostResume(CriuEnvironment environment, HookContext context)
    {
        // A tree in a network namespace of its own: network-unlock ran before this; if it
        // was killed or failed, the lock (which has no lease) would cut the tree off for good.
        if (environment.InitPid is { } pid && Directory.Exists($"/proc/{pid}") && !SharesNetworkNamespace(pid))
        {
            if (NamespaceLock.IsTaken(pid))
            {
                NamespaceLock.Release(pid);
                context.Info($"post-resume: the network namespace of PID {pid} was still locked (network-unlock killed or failed?); released the lock");
            }
            return 0;
        }
        string state = HookStateStore.RestoreStatePath(context.CriuPid);
        if (!File.Exists(state))
            return DetachAfterResume(context);
        FreezeManifest manifest;
        try
        {
            manifest = ReadManifestFile(HookStateStore.RuntimeDirectory, Path.GetFileName(state));
        }
        finally
        {
            HookStateStore.TryRemove(state);
        }
        FreezerOptions options = context.Settings.ToFreezerOptions();
        if (!TcpFreezer.IsAttached(options))
            return 0;
        using TcpFreezer freezer = TcpFreezer.Open(options);
        ThawResult result = freezer.Thaw(manifest.ConnectionKeys(), manifest.EndpointKeys(), context.Settings.Kick);
        context.Info($"post-resume: pre-resume did not finish (killed or failed?), so {result.ConnectionsThawed} connections and " +
                     $"{result.EndpointsThawed} listening endpoints were still frozen; thawed them now" + KickReport(result.Kick) + DetachIfIdle(freezer, context));
        return 0;
    }

    /// <summary>
    /// The normal post-resume: pre-resume thawed, the tasks run; unless keep-attached is set, the
    /// programs are detached and the pins removed when nothing else is frozen (another migration's
    /// connections keep them). Says nothing when there is nothing attached.
    /// </summary>
    private static int DetachAfterResume(HookContext context)
    {
        FreezerOptions options = context.Settings.ToFreezerOptions();
        if (context.Settings.KeepAttached || !TcpFreezer.IsAttached(options))
            return 0;
        if (context.AfterAnswer is { } afterAnswer)
        {
            // The agent detaches once CRIU has the answer: criu restore returns without waiting for the netlink and bpffs work.
            afterAnswer.Add(() =>
            {
                // The restore watcher may have detached meanwhile (it does once CRIU has ended and nothing is frozen).
                string gone = $"post-resume (CRIU {context.CriuPid}): nothing is attached any more (the restore watcher detached)";
                if (!TcpFreezer.IsAttached(options))
                    return gone;
                try
                {
                    using TcpFreezer later = TcpFreezer.Open(options);
                    return $"post-resume (CRIU {context.CriuPid}): {DetachIfIdle(later, context).TrimStart(';', ' ')}";
                }
                catch (TcpFreezeException) when (!TcpFreezer.IsAttached(options))
                {
                    return gone;
                }
            });
            context.Info("post-resume: the restored connections were thawed at pre-resume; the agent detaches once CRIU has this answer, if nothing else is frozen then");
            return 0;
        }
        var phases = new StepTimer();
        using TcpFreezer freezer = TcpFreezer.Open(options);
        string detached = DetachIfIdle(freezer, context);
        phases.Mark("detach");
        context.Info($"post-resume: the restored connections were thawed at pre-resume{detached} {phases}");
        return 0;
    }

    /// <summary>
    /// Which interfaces pre-restore attached to. Where the dump froze (same namespace, its pins
    /// still there) every interface it attached to now is one the dump did not cover: it
    /// appeared (or came up) during the copy, and traffic of the frozen connections on it went
    /// unguarded until now, so it is named. Elsewhere (another host or namespace) every
    /// interface is new, and the list says where the freeze holds.
    /// </summary>
    private static string InterfaceReport(TcpFreezer freezer, FreezeResult result, bool whereTheDumpFroze)
    {
        List<string> attached = [.. freezer.AttachedInterfaces.Where(i => i.Created).Select(i => i.Name).Union(result.InterfacesAttached)];
        if (attached.Count == 0)
            return "";
        if (!whereTheDumpFroze)
            return $"; attached to {string.Join(", ", attached)}";
        return attached.Count == 1
            ? $"; attached to new interface {attached[0]} that appeared since the dump"
            : $"; attached to new interfaces {string.Join(", ", attached)} that appeared since the dump";
    }

    /// <summary>
    /// The peer sequence numbers, peer segments and local segments of the manifest (what the dump host recorded) for
    /// connections that exist as sockets now, i.e. that CRIU restored. The images are CRIU's trusted
    /// input, but the kick and the replay send packets: a key planted in the manifest must not make
    /// them send any to an address that is not an end of a restored connection (and the replay sends a
    /// segment only if its addresses and ports are its connection's, SegmentReplay.Build). A connection
    /// whose drops this host saw itself is kicked and replayed from its own record: its peer did send to it.
    /// </summary>
    private static (Dictionary<ConnectionKey, uint>?, Dictionary<ConnectionKey, PeerSegment>?, Dictionary<ConnectionKey, PeerSegment>?) RestoredOnly(
        Dictionary<ConnectionKey, uint> sequences, Dictionary<ConnectionKey, PeerSegment> segments, Dictionary<ConnectionKey, PeerSegment> localSegments)
    {
        if (sequences.Count == 0 && segments.Count == 0 && localSegments.Count == 0)
            return (null, null, null);
        HashSet<ConnectionKey> live = [.. ProcessSockets.FindLiveSockets(sequences.Keys.Union(segments.Keys).Union(localSegments.Keys), [])
            .Where(s => s.Remote is not null).Select(s => new ConnectionKey(s.Local, s.Remote!))];
        Dictionary<ConnectionKey, T>? Live<T>(Dictionary<ConnectionKey, T> all)
            => all.Count == 0 ? null : all.Where(r => live.Contains(r.Key)).ToDictionary(r => r.Key, r => r.Value);
        return (Live(sequences), Live(segments), Live(localSegments));
    }

    private static string KickReport(KickResult kick) => kick switch
    {
        { Error: { } error } => $"; the resume kick was not sent ({error})",
        { PacketsSent: 0, SegmentsReplayed: 0, LocalSegmentsReplayed: 0 } => "",
        _ => $"; resume kick: {kick.PacketsSent} messages to {kick.ConnectionsKicked} connections" +
             (kick.PacketsFailed > 0 ? $" ({kick.PacketsFailed} could not be sent)" : "") +
             (kick.SegmentsReplayed > 0 ? $", {kick.SegmentsReplayed} peer segments replayed" : "") +
             (kick.LocalSegmentsReplayed > 0 ? $", {kick.LocalSegmentsReplayed} local segments sent to their peers" : "") +
             (kick.ReplayFailed > 0 ? $" ({kick.ReplayFailed} could not be replayed)" : ""),
    };

    private static string DetachIfIdle(TcpFreezer freezer, HookContext context) => DetachIfIdle(freezer, context.Settings.KeepAttached);

    /// <summary>Detaches when nothing is frozen and nobody else has the set open (unless keep-attached); what happened, for a log line.</summary>
    internal static string DetachIfIdle(TcpFreezer freezer, bool keepAttached)
    {
        if (keepAttached)
            return "";
        return freezer.DetachIfIdle() is { } d
            ? $"; nothing else frozen, so detached from {string.Join(", ", d.Interfaces)} and removed {d.PinsRemoved} pins"
            : "; other connections are still frozen, programs stay attached (or another process has them open)";
    }

    /// <summary>
    /// network-lock (dump; CRIU runs it only for a tree in a network namespace of its own,
    /// after the tasks are frozen and before any socket is dumped): locks that namespace as a whole.
    /// </summary>
    public static int NetworkLock(CriuEnvironment environment, HookContext context)
    {
        int pid = RequireInitPid(environment);
        var watch = Stopwatch.StartNew();
        NamespaceLock.Take(pid);
        context.Info($"network-lock: locked the network namespace of PID {pid} as a whole (nft table inet {NamespaceLock.Table}) in {watch.Elapsed.TotalMilliseconds:F1} ms");
        return 0;
    }

    /// <summary>
    /// setup-namespaces (restore): the restored tree's namespaces exist, its sockets do not
    /// yet. For a tree in a network namespace of its own the lock goes (back) in now: the
    /// namespace may be new (podman creates a fresh one), or still locked from the dump (a
    /// pod's namespace), in which case taking it again changes nothing.
    /// </summary>
    public static int SetupNamespaces(CriuEnvironment environment, HookContext context)
    {
        int pid = RequireInitPid(environment);
        if (SharesNetworkNamespace(pid))
            return 0;
        var watch = Stopwatch.StartNew();
        NamespaceLock.Take(pid);
        context.Info($"setup-namespaces: locked the network namespace of the restored PID {pid} as a whole (nft table inet {NamespaceLock.Table}) " +
                     $"in {watch.Elapsed.TotalMilliseconds:F1} ms, before any socket is restored");
        return 0;
    }

    /// <summary>
    /// network-unlock (only for a tree in a network namespace of its own): after a restore,
    /// once the sockets are back; after a failed dump or a --leave-running one. Releases the lock.
    /// </summary>
    public static int NetworkUnlock(CriuEnvironment environment, HookContext context)
    {
        int pid = RequireInitPid(environment);
        var watch = Stopwatch.StartNew();
        NamespaceLock.Release(pid);
        context.Info($"network-unlock: released the lock of the network namespace of PID {pid} in {watch.Elapsed.TotalMilliseconds:F1} ms");
        return 0;
    }

    /// <summary>
    /// Whether the CRIU that runs the hook runs <c>criu pre-dump</c>: a memory-only round of an
    /// iterative migration, whose tasks keep running and whose sockets are not dumped. Freezing there
    /// would stall every client for the round and protect nothing (see <see cref="CriuCommandLine"/>).
    /// </summary>
    private static bool IsPreDumpRound(HookContext context, string step)
    {
        if (CriuCommandLine.Read(context.CriuPid) is not { IsPreDumpRound: true })
            return false;
        context.Info($"{step}: CRIU (PID {context.CriuPid}) runs `criu pre-dump`, a memory-only round: the tasks keep running and no socket " +
                     "is dumped, so nothing is frozen; the final `criu dump` freezes");
        return true;
    }

    private static int RequireInitPid(CriuEnvironment environment)
        => environment.InitPid ?? throw new HookException(
            $"CRTOOLS_INIT_PID is not set at {environment.ActionName}; cannot tell which network namespace to lock or unlock");

    private static FreezeManifest ReadManifest(CriuEnvironment environment, string step)
    {
        string images = environment.ImageDirectory ?? throw new HookException($"CRTOOLS_IMAGE_DIR is not set at {step}; cannot read the manifest");
        return ReadManifestFile(images, FreezeManifest.FileName);
    }

    private static FreezeManifest ReadManifestFile(string directory, string fileName)
    {
        try
        {
            return FreezeManifest.Read(directory, fileName);
        }
        catch (InvalidDataException e)
        {
            throw new HookException(e.Message);
        }
    }

    /// <summary>Whether process <paramref name="pid"/> is in this process's network namespace.</summary>
    internal static bool SharesNetworkNamespace(int pid)
        => NetworkNamespace.IsProcessInCallersNamespace(pid)
           ?? throw new HookException($"cannot read the network namespace of PID {pid} (is it running?)");
}
