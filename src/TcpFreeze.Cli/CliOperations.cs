using System.Globalization;
using System.Text.Json;
using TcpFreeze.CriuHooks;

namespace TcpFreeze.Cli;

/// <summary>How <c>list</c> and <c>stats</c> write their report (<c>--format</c>; <c>-j</c> and <c>--json</c> are <see cref="Json"/>).</summary>
internal enum OutputFormat
{
    /// <summary>Lines for people.</summary>
    Text,

    /// <summary>One JSON document of the documented, versioned schema (<see cref="CliJson"/>).</summary>
    Json,

    /// <summary>The Prometheus text exposition format (<c>stats</c> only).</summary>
    Prometheus,
}

/// <summary>
/// What each command does, over the TcpFreeze library. Every method returns the exit
/// code and writes its report to the output; failures are exceptions that
/// <see cref="Cli.Guard"/> turns into one stderr line; warnings go to <paramref name="error"/>.
/// </summary>
internal sealed class CliOperations(TextWriter output, TextWriter error)
{
    /// <param name="options">What to attach.</param>
    /// <param name="capacityAsked">Whether --capacity was given: a map that exists already keeps its capacity, and
    /// that must not pass silently (exit 1 after the attach, with what to do).</param>
    public int Attach(FreezerOptions options, bool capacityAsked = false)
    {
        using TcpFreezer freezer = TcpFreezer.Attach(options);
        foreach (AttachedInterface nic in freezer.AttachedInterfaces)
            output.WriteLine($"{(nic.Created ? "attached" : "already attached")} {nic.Name} " +
                             $"({(nic.IngressHook == IngressHook.Tc ? "TC ingress" : $"XDP {Lower(nic.XdpMode)}")}, TC egress)");
        output.WriteLine($"pins in {freezer.PinDirectory}");
        if (capacityAsked && freezer.ConnectionCapacity != options.MaxConnections)
        {
            error.WriteLine($"tcpfreeze: --capacity {options.MaxConnections} was not applied: the connections map of {options.Namespace} exists already and " +
                            $"holds {freezer.ConnectionCapacity} connections at most (a map's capacity is fixed when it is created); everything else is attached. " +
                            $"To change it, thaw what is frozen, then 'tcpfreeze detach' and 'tcpfreeze attach --capacity {options.MaxConnections}'");
            return ExitCodes.Failure;
        }
        return ExitCodes.Success;
    }

    /// <summary>
    /// Removes whatever TcpFreeze left, in any combination: attached programs with or
    /// without pins, pins with or without programs, an empty pin directory. Nothing
    /// left is "nothing to do", exit 0.
    /// </summary>
    public int Detach(FreezerOptions options)
    {
        string directory = TcpFreezer.GetPinDirectory(options);
        bool hadDirectory = Directory.Exists(directory);
        DetachResult result = TcpFreezer.Detach(options);
        bool removedDirectory = hadDirectory && !Directory.Exists(directory);
        if (result.Interfaces.Count == 0 && result.PinsRemoved == 0)
            output.WriteLine(removedDirectory ? $"nothing was attached in {options.Namespace}; removed the empty pin directory {directory}" : $"nothing was attached in {options.Namespace}");
        else
            output.WriteLine($"detached from {(result.Interfaces.Count == 0 ? "no interface" : string.Join(", ", result.Interfaces))}; removed {Count(result.PinsRemoved, "pin")}");
        // A concurrent attach may create and fill the directory meanwhile: only name what is there, and only if something is.
        string[] left = EntriesOf(directory);
        if (left.Length > 0)
            Cli.Warn(error, $"{directory} still holds files TcpFreeze did not create or another process added meanwhile ({string.Join(", ", left)}); " +
                            "run 'tcpfreeze detach' again, or remove them by hand");
        return ExitCodes.Success;
    }

    /// <summary>
    /// Detaches as <see cref="Detach"/>, but only when nothing is frozen: a service stop (or a shutdown) in the
    /// middle of a CRIU migration must not thaw what the dump froze, or the dumped connections' peers get
    /// resets. The check and the detach happen under the pin root's lock (<see cref="TcpFreezer.DetachIfIdle"/>).
    /// What stays frozen is named with its lease, after which the programs drop nothing any more.
    /// </summary>
    public int DetachIfIdle(FreezerOptions options)
    {
        AttachmentState state = TcpFreezer.Inspect(options);
        if (!state.HasFrozenSetSource)
            return Detach(options); // no map to hold a freeze: only leftovers to remove
        DetachResult? result;
        IReadOnlyList<FrozenConnection> connections;
        IReadOnlyList<FrozenEndpoint> endpoints;
        using (TcpFreezer freezer = TcpFreezer.Open(options))
        {
            result = freezer.DetachIfIdle();
            if (result is not null)
            {
                output.WriteLine($"nothing was frozen; detached from {(result.Interfaces.Count == 0 ? "no interface" : string.Join(", ", result.Interfaces))}; removed {Count(result.PinsRemoved, "pin")}");
                return ExitCodes.Success;
            }
            connections = freezer.ListConnections().Where(c => !c.IsExpired).ToList();
            endpoints = freezer.ListEndpoints().Where(e => !e.IsExpired).ToList();
        }
        IEnumerable<TimeSpan?> leases = connections.Select(c => c.LeaseRemaining).Concat(endpoints.Select(e => e.LeaseRemaining));
        string until = leases.Any(l => l is null)
            ? "some without a lease, until 'tcpfreeze thaw --all' or 'tcpfreeze detach'"
            : $"until their leases end, at most {Lease(leases.Max())} from now";
        output.WriteLine($"kept everything attached: {Count(connections.Count, "connection")} and {Count(endpoints.Count, "listening endpoint")} are frozen " +
                         $"in {options.Namespace} (a CRIU migration in progress?), {until}; nothing was detached. " +
                         "Run 'tcpfreeze detach' to thaw and detach anyway");
        return ExitCodes.Success;
    }

    /// <summary>Removes the pin directories of namespaces that no longer exist (see <see cref="TcpFreezer.RemoveDeadNamespaces(string?, TimeSpan?)"/>).</summary>
    public int CollectGarbage(string pinRoot, TimeSpan lockTimeout)
    {
        DeadNamespaceCleanup result = TcpFreezer.RemoveDeadNamespaces(pinRoot, lockTimeout);
        if (result.Directories.Count == 0)
        {
            output.WriteLine($"nothing to remove: every pin directory under {pinRoot} belongs to a namespace that still exists");
            return ExitCodes.Success;
        }
        foreach (string directory in result.Directories)
        {
            if (Directory.Exists(directory))
                Cli.Warn(error, $"{directory} (its namespace no longer exists) still holds files TcpFreeze did not create " +
                                $"({string.Join(", ", Directory.EnumerateFileSystemEntries(directory).Select(Path.GetFileName))}); remove them by hand");
            else
                output.WriteLine($"removed {directory} (its namespace no longer exists)");
        }
        output.WriteLine($"removed {Count(result.PinsRemoved, "pin")} of {Count(result.Directories.Count, "namespace")} that no longer exist");
        return ExitCodes.Success;
    }

    public int Freeze(FreezerOptions options, ConnectionKey? connection, IReadOnlyList<EndpointKey> endpoints, TimeSpan lease)
    {
        using TcpFreezer freezer = TcpFreezer.Open(options);
        FreezeResult result = freezer.Freeze(connection is { } c ? [c] : [], endpoints, lease);
        ReportFreeze(result, lease);
        return ExitCodes.Success;
    }

    /// <summary>
    /// Freezes what a process tree holds, in the process's own namespace, in one call:
    /// its listeners go first (the library's order), so no new connection slips in
    /// while the existing ones freeze.
    /// </summary>
    public int FreezeProcess(FreezerOptions options, int pid, TimeSpan lease)
    {
        DiscoveredSockets found = ProcessSockets.Discover(pid);
        using TcpFreezer freezer = TcpFreezer.Open(options with { Namespace = NetworkNamespace.FromProcess(pid) });
        ReportDiscovery(found);
        if (found.Connections.Count == 0 && found.Listeners.Count == 0)
        {
            output.WriteLine("nothing to freeze");
            return ExitCodes.Success;
        }
        ReportFreeze(freezer.Freeze(found.Connections, found.Listeners, lease), lease);
        return ExitCodes.Success;
    }

    public int Thaw(FreezerOptions options, ConnectionKey? connection, IReadOnlyList<EndpointKey> endpoints, bool kick = true)
    {
        using TcpFreezer freezer = TcpFreezer.Open(options);
        ReportThaw(freezer.Thaw(connection is { } c ? [c] : [], endpoints, kick));
        return ExitCodes.Success;
    }

    public int ThawProcess(FreezerOptions options, int pid, bool kick = true)
    {
        DiscoveredSockets found = ProcessSockets.Discover(pid);
        using TcpFreezer freezer = TcpFreezer.Open(options with { Namespace = NetworkNamespace.FromProcess(pid) });
        ReportDiscovery(found);
        ReportThaw(freezer.Thaw(found.Connections, found.Listeners, kick));
        return ExitCodes.Success;
    }

    /// <summary>
    /// Thaws everything, from whatever TcpFreeze left: the pinned maps or, where pins
    /// are gone, the maps of its attached (or pinned) programs. What is odd about the
    /// state is one warning line that says how to clean up. Nothing left at all is
    /// "nothing to do", exit 0, like detach.
    /// </summary>
    public int ThawAll(FreezerOptions options, bool kick = true)
    {
        AttachmentState state = TcpFreezer.Inspect(options);
        if (!state.HasFrozenSetSource)
        {
            if (TcpFreezer.PinRootUnreadable(state.PinDirectory) is { } denied)
                throw new TcpFreezeException("thaw everything", denied);
            output.WriteLine(state.PinDirectoryExists
                ? $"nothing is frozen in {options.Namespace}: {state.PinDirectory} holds no TcpFreeze pin and no TcpFreeze program is attached; 'tcpfreeze detach' removes the directory"
                : $"nothing is attached in {options.Namespace}, so nothing is frozen");
            return ExitCodes.Success;
        }
        using TcpFreezer freezer = TcpFreezer.OpenForRecovery(options);
        ReportThaw(freezer.ThawAll(kick));
        if (freezer.UnpinnedMaps.Count > 0)
        {
            string through = state.ProgramsAttached ? $"the TcpFreeze programs attached to {string.Join(", ", state.AttachedInterfaces)}" : "the pinned TcpFreeze programs";
            Cli.Warn(error, $"the pins of the {string.Join(", ", freezer.UnpinnedMaps)} maps were missing from {state.PinDirectory}, so the thaw went through {through}; " +
                            "run 'tcpfreeze detach' to remove what is left, then 'tcpfreeze attach' to start afresh");
        }
        else if (!state.ProgramsAttached)
        {
            Cli.Warn(error, $"TcpFreeze's programs are not attached to any interface in {options.Namespace} (someone detached them), so nothing was being held; " +
                            "run 'tcpfreeze attach' to attach them again, or 'tcpfreeze detach' to remove the pins");
        }
        else if (state.MissingPins.Count > 0)
        {
            Cli.Warn(error, $"the pins {string.Join(", ", state.MissingPins)} are missing from {state.PinDirectory}; 'tcpfreeze attach' puts them back");
        }
        return ExitCodes.Success;
    }

    public int List(FreezerOptions options, OutputFormat format)
    {
        using TcpFreezer freezer = TcpFreezer.Open(options);
        IReadOnlyList<FrozenConnection> connections = freezer.ListConnections();
        IReadOnlyList<FrozenEndpoint> endpoints = freezer.ListEndpoints();
        if (format == OutputFormat.Json)
        {
            var list = new FrozenListJson(
                CliJson.SchemaVersion,
                freezer.PinDirectory,
                connections.Select(c => new FrozenConnectionJson(
                    TcpEndpointText.Format(c.Key.Local), TcpEndpointText.Format(c.Key.Remote), c.DroppedPackets, Seconds(c.LeaseRemaining), c.IsExpired,
                    new DirectionsJson(c.PeerDataSegmentsDropped, c.LocalDataSegmentsDropped))).ToList(),
                endpoints.Select(e => new FrozenEndpointJson(
                    TcpEndpointText.Format(e.Key.Endpoint), e.DroppedPackets, Seconds(e.LeaseRemaining), e.IsExpired)).ToList());
            output.WriteLine(JsonSerializer.Serialize(list, CliJsonContext.Default.FrozenListJson));
            return ExitCodes.Success;
        }
        if (connections.All(c => c.IsExpired) && endpoints.All(e => e.IsExpired))
            output.WriteLine("nothing is frozen");
        foreach (FrozenEndpoint e in endpoints.Where(e => !e.IsExpired))
            output.WriteLine($"endpoint {e.Key} dropped={e.DroppedPackets} lease={Lease(e.LeaseRemaining)}");
        foreach (FrozenConnection c in connections.Where(c => !c.IsExpired))
            output.WriteLine($"connection {c.Key} dropped={c.DroppedPackets} lease={Lease(c.LeaseRemaining)} " +
                             $"data-dropped=receive:{c.PeerDataSegmentsDropped},transmit:{c.LocalDataSegmentsDropped}");
        // Entries whose lease ended drop nothing any more: listed apart, so they are never read as frozen.
        foreach (FrozenEndpoint e in endpoints.Where(e => e.IsExpired))
            output.WriteLine($"expired endpoint {e.Key} dropped={e.DroppedPackets} (lease ended; not frozen)");
        foreach (FrozenConnection c in connections.Where(c => c.IsExpired))
            output.WriteLine($"expired connection {c.Key} dropped={c.DroppedPackets} (lease ended; not frozen)");
        return ExitCodes.Success;
    }

    public int Stats(FreezerOptions options, OutputFormat format)
    {
        if (format == OutputFormat.Prometheus && !TcpFreezer.IsAttached(options) && TcpFreezer.PinRootUnreadable(TcpFreezer.GetPinDirectory(options)) is null)
        {
            // A scrape must tell "nothing attached" from "the exporter broke": a sample, not an error.
            output.Write(PrometheusText.Format(TcpFreezer.GetPinDirectory(options), null));
            return ExitCodes.Success;
        }
        using TcpFreezer freezer = TcpFreezer.Open(options);
        FreezerStatistics s = freezer.GetStatistics();
        if (format == OutputFormat.Prometheus)
        {
            output.Write(PrometheusText.Format(freezer.PinDirectory, s));
            return ExitCodes.Success;
        }
        if (format == OutputFormat.Json)
        {
            var stats = new StatisticsJson(CliJson.SchemaVersion, freezer.PinDirectory, s.TcpPacketsSeen, new DirectionsJson(s.DroppedIngress, s.DroppedEgress), s.Passed,
                s.FrozenConnections, s.FrozenEndpoints, s.ConnectionCapacity, s.ExpiredConnections, s.ExpiredEndpoints);
            output.WriteLine(JsonSerializer.Serialize(stats, CliJsonContext.Default.StatisticsJson));
            return ExitCodes.Success;
        }
        output.WriteLine($"pin directory:        {freezer.PinDirectory}");
        output.WriteLine($"TCP packets seen:     {s.TcpPacketsSeen}");
        output.WriteLine($"dropped, receive:     {s.DroppedIngress}");
        output.WriteLine($"dropped, transmit:    {s.DroppedEgress}");
        output.WriteLine($"passed:               {s.Passed}");
        output.WriteLine($"frozen connections:   {s.FrozenConnections} of {s.ConnectionCapacity}");
        output.WriteLine($"frozen endpoints:     {s.FrozenEndpoints}");
        output.WriteLine($"expired entries:      {s.ExpiredConnections} connections, {s.ExpiredEndpoints} endpoints (their lease ended: they drop nothing; the next freeze removes them)");
        return ExitCodes.Success;
    }

    /// <summary>Prints the CRIU configuration lines, with a comment saying where they belong.</summary>
    public int PrintCriuConfig(CriuConfiguration configuration)
    {
        string readers = configuration.Engine == CriuEngine.Criu ? "CRIU always reads it, under runc and podman too" : "runc and podman hand it to CRIU";
        output.WriteLine($"# for {configuration.FilePath} ({readers}); 'tcpfreeze criu-config --write' puts them there");
        foreach (string line in configuration.Lines)
            output.WriteLine(line);
        return ExitCodes.Success;
    }

    public int WriteCriuConfig(CriuConfiguration configuration)
    {
        CriuConfigurationChange change = configuration.Write();
        output.WriteLine(change.Outcome switch
        {
            CriuConfigurationOutcome.Created => $"created {change.FilePath} with the tcpfreeze block (action-script {configuration.HookPath})",
            CriuConfigurationOutcome.Added => $"added the tcpfreeze block to {change.FilePath} (action-script {configuration.HookPath})",
            CriuConfigurationOutcome.Replaced => $"updated the tcpfreeze block in {change.FilePath} (action-script {configuration.HookPath})",
            _ => $"{change.FilePath} already has this tcpfreeze block; nothing changed",
        });
        ReportWarnings(change);
        return ExitCodes.Success;
    }

    public int RemoveCriuConfig(CriuConfiguration configuration)
    {
        CriuConfigurationChange change = configuration.Remove();
        output.WriteLine(change.Outcome != CriuConfigurationOutcome.Removed ? $"no tcpfreeze block in {change.FilePath}; nothing changed"
            : change.FileDeleted ? $"removed {change.FilePath}, which held only the tcpfreeze block"
            : $"removed the tcpfreeze block from {change.FilePath}");
        ReportWarnings(change);
        return ExitCodes.Success;
    }

    /// <summary>Writes a generated document (completion script, man page) as it is.</summary>
    public int Print(string document)
    {
        output.Write(document);
        return ExitCodes.Success;
    }

    // ------------------------------------------------------------------ reports

    private void ReportWarnings(CriuConfigurationChange change)
    {
        foreach (string warning in change.Warnings)
            Cli.Warn(error, warning);
    }

    private void ReportDiscovery(DiscoveredSockets found)
    {
        int descendants = found.Pids.Count - 1;
        string tree = descendants == 0 ? $"process {found.RootPid} holds" : $"process {found.RootPid} and {Count(descendants, "descendant")} hold";
        output.WriteLine($"{tree} {Count(found.Connections.Count, "connection")} and {Count(found.Listeners.Count, "listening endpoint")}");
    }

    private void ReportFreeze(FreezeResult result, TimeSpan lease)
    {
        // A re-freeze gives what was frozen this call's lease (FreezeEntry.Renewed); without one, they stay frozen until thawed.
        string renewed = result.AlreadyFrozen == 0 ? ""
            : lease == TcpFreeze.Lease.Forever ? $"; {result.AlreadyFrozen} {(result.AlreadyFrozen == 1 ? "was" : "were")} already frozen and {(result.AlreadyFrozen == 1 ? "stays" : "stay")} frozen until thawed"
            : $"; {result.AlreadyFrozen} {(result.AlreadyFrozen == 1 ? "was" : "were")} already frozen, now with this lease";
        string until = lease != TcpFreeze.Lease.Forever ? $" for {Lease(lease)}" : " until thawed";
        if (result.InterfacesAttached.Count > 0)
            output.WriteLine($"attached to {string.Join(", ", result.InterfacesAttached)} (up without TcpFreeze's programs), so the freeze holds there too");
        output.WriteLine($"froze {Count(result.ConnectionsFrozen, "connection")} and {Count(result.EndpointsFrozen, "endpoint")}{until}{renewed}");
    }

    private void ReportThaw(ThawResult result)
    {
        KickResult k = result.Kick;
        string kicked = k.PacketsSent == 0 ? "" : $"; resume kick: {Count(k.PacketsSent, "message")} to {Count(k.ConnectionsKicked, "connection")}";
        // The replay reaches peers no ICMP reaches (RESUME.md): an operator sees that it ran.
        string replayed = k.SegmentsReplayed + k.LocalSegmentsReplayed == 0 ? ""
            : $"; replayed {Count(k.SegmentsReplayed, "peer segment")} to this host's sockets and {Count(k.LocalSegmentsReplayed, "local segment")} to their peers";
        output.WriteLine($"thawed {Count(result.ConnectionsThawed, "connection")} and {Count(result.EndpointsThawed, "endpoint")}{kicked}{replayed}");
        if (k.Error is not null)
            Cli.Warn(error, $"the resume kick was not sent ({k.Error}); the thawed connections resume at their next retransmission");
        else if (k.PacketsFailed > 0)
            Cli.Warn(error, $"{Count(k.PacketsFailed, "resume kick message")} could not be sent (no route to that address); those connections resume at their next retransmission");
        if (k.ReplayFailed > 0)
            Cli.Warn(error, $"{Count(k.ReplayFailed, "kept segment")} could not be replayed (no raw socket, or the address is gone); those connections resume at their next retransmission");
        foreach (EndpointKey endpoint in result.NotFrozenEndpoints)
            output.WriteLine($"not frozen: endpoint {endpoint}");
        foreach (ConnectionKey connection in result.NotFrozenConnections)
            output.WriteLine($"not frozen: connection {connection}");
    }

    private static string[] EntriesOf(string directory)
    {
        try
        {
            return [.. Directory.EnumerateFileSystemEntries(directory).Select(Path.GetFileName).OfType<string>()];
        }
        catch (DirectoryNotFoundException)
        {
            return [];
        }
    }

    private static string Count(int n, string noun) => n == 1 ? $"1 {noun}" : $"{n} {noun}s";

    private static string Lower(XdpAttachMode mode) => mode.ToString().ToLowerInvariant();

    private static double? Seconds(TimeSpan? lease) => lease is { } l ? Math.Round(l.TotalSeconds, 3) : null;

    private static string Lease(TimeSpan? lease) => lease switch
    {
        null => "none",
        { } l when l == TimeSpan.Zero => "expired",
        { } l => l.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture) + "s",
    };
}
