using TcpFreeze.Ebpf.Interop;

namespace TcpFreeze;

/// <summary>
/// Attaches TcpFreeze's programs to a namespace's interfaces, detaches them, and finds
/// them. Every method here runs its interface work inside the options' namespace.
/// <para>
/// <b>Moving the ingress hook.</b> An interface attached before with the other
/// <see cref="FreezerOptions.IngressHook"/> is moved to the one asked for: the new
/// ingress program is attached on every interface first, and only when all of them are
/// attached is TcpFreeze's program removed from the old hook. A failed attach (rolled
/// back) therefore never loses a working ingress program, and ingress is never
/// unguarded. Both ingress programs share the maps and give the same verdicts, so the
/// moment when both run is harmless. This is the one place that explains the move;
/// other comments point here.
/// </para>
/// <para>
/// <b>L3 devices.</b> A point-to-point device (tun, WireGuard, PPP, ipip/sit/gre: no
/// Ethernet header, <see cref="NetworkInterfaceInfo.IsLayer3"/>) gets the L3 programs as TC
/// ingress and egress filters at TcpFreeze's handle, whatever ingress hook the options ask
/// for; there is nothing to move on it.
/// </para>
/// </summary>
internal static class InterfaceAttacher
{
    /// <summary>Attaches to the interfaces the options name (or every one that is up), recording what it did for a rollback.</summary>
    public static List<AttachedInterface> Attach(FreezerOptions options, PinnedObjects objects, NamespacePins pins, List<XdpAttachment> xdpDone, List<TcAttachment> tcDone)
        => Attach(options, new KernelAttachPoints(objects.Program), pins, xdpDone, tcDone);

    /// <inheritdoc cref="Attach(FreezerOptions, PinnedObjects, NamespacePins, List{XdpAttachment}, List{TcAttachment})"/>
    internal static List<AttachedInterface> Attach(FreezerOptions options, IAttachPoints points, NamespacePins pins, List<XdpAttachment> xdpDone, List<TcAttachment> tcDone)
        => options.Namespace.Run(() => AttachHere(options, points, pins, xdpDone, tcDone));

    private static List<AttachedInterface> AttachHere(FreezerOptions options, IAttachPoints points, NamespacePins pins, List<XdpAttachment> xdpDone, List<TcAttachment> tcDone)
    {
        List<NetworkInterfaceInfo> targets = SelectTargets(options, points);
        var result = new List<AttachedInterface>();
        ProgramOwnership owners = ProgramOwnership.Of(pins);
        foreach (ProgramDefinition definition in KernelObjects.Programs)
            owners.WithProgram(points.ProgramId(definition));
        foreach (NetworkInterfaceInfo nic in targets)
            result.Add(AttachOne(nic, points, IngressHookFor(nic, options.IngressHook), options, owners, xdpDone, tcDone));

        // Every interface is attached: only now retire the other ingress hook (see the type's remarks).
        for (int n = 0; n < result.Count; n++)
        {
            if (result[n].Layer3)
                continue;
            try
            {
                bool moved = result[n].IngressHook == IngressHook.Tc ? DetachXdp(points, result[n].Index, owners) : DetachTcIngress(points, result[n].Index, owners);
                if (moved)
                    result[n] = result[n] with { Created = true };
            }
            catch (BpfException e)
            {
                options.CreateLogger(FreezerOptions.LogCategory)?.LogIngressMoveFailure(e, result[n].Name);
            }
        }
        return result;
    }

    /// <summary>
    /// The ingress hook an interface gets when <paramref name="asked"/> is asked for. Loopback always
    /// gets the TC ingress program: only there can the program see a packet's mark, and CRIU's own
    /// packets, which must pass, travel over loopback with its repair mark (the fake FIN with which
    /// CRIU restores a socket that had received a FIN; see tf_tc_ingress in bpf/tcpfreeze.bpf.c).
    /// Generic XDP on loopback saved nothing worth that. (L3 devices get their own TC pair whatever
    /// the hook: <see cref="KernelObjects.ProgramsFor"/>.)
    /// </summary>
    internal static IngressHook IngressHookFor(NetworkInterfaceInfo nic, IngressHook asked)
        => nic.HardwareType == NetworkInterfaceInfo.Loopback ? IngressHook.Tc : asked;

    /// <summary>
    /// Attaches the ingress program (at <paramref name="hook"/>) and the egress program to one
    /// interface; an L3 device gets the L3 pair as TC filters (<see cref="KernelObjects.ProgramsFor"/>).
    /// </summary>
    private static AttachedInterface AttachOne(NetworkInterfaceInfo nic, IAttachPoints points, IngressHook hook,
        FreezerOptions options, ProgramOwnership owners, List<XdpAttachment> xdpDone, List<TcAttachment> tcDone)
    {
        (ProgramDefinition ingress, ProgramDefinition egress) = KernelObjects.ProgramsFor(nic, hook);
        XdpAttachMode mode = XdpAttachMode.Auto;
        bool ingressCreated;
        if (ingress != KernelObjects.XdpIngress)
        {
            TcAttachment i = AttachTc(points, ingress, nic, TcDirection.Ingress, options, owners);
            tcDone.Add(i);
            ingressCreated = i.Created;
        }
        else
        {
            uint current = points.QueryXdp(nic.Index);
            bool replace = MayReplace(current, points.ProgramId(ingress), KernelObjects.XdpIngress, nic, "XDP", options, owners);
            XdpAttachment x = points.AttachXdp(ingress, nic.Index, options.XdpMode.ToInterop(), replace);
            xdpDone.Add(x);
            mode = XdpAttachModes.FromInterop(x.Mode);
            ingressCreated = x.Created;
        }

        TcAttachment t = AttachTc(points, egress, nic, TcDirection.Egress, options, owners);
        tcDone.Add(t);
        return new AttachedInterface(nic.Name, nic.Index, mode, ingressCreated || t.Created)
        {
            IngressHook = nic.IsLayer3 ? IngressHook.Tc : hook,
            Layer3 = nic.IsLayer3,
        };
    }

    /// <summary>
    /// Whether the program found at an attach point may be replaced: always when it is ours
    /// (an older load) or an orphan; never, unless asked (<see cref="FreezerOptions.ReplaceForeignPrograms"/>),
    /// when it is another tool's (the interop layer then refuses naming it) or another pin
    /// root's, which this refuses itself, naming that pin root.
    /// </summary>
    private static bool MayReplace(uint current, uint ours, ProgramDefinition definition, NetworkInterfaceInfo nic, string hook, FreezerOptions options, ProgramOwnership owners)
    {
        if (current == 0 || current == ours)
            return options.ReplaceForeignPrograms;
        switch (owners.Classify(current, definition, out string? other))
        {
            case ProgramOwner.Ours:
            case ProgramOwner.Orphan:
                return true;
            case ProgramOwner.OtherPinRoot when !options.ReplaceForeignPrograms:
                string otherRoot = Path.GetDirectoryName(other) ?? other!;
                throw new TcpFreezeException($"attach {hook} to {nic.Name} in {options.Namespace}",
                    $"{nic.Name} already runs TcpFreeze's {definition.ProgramName} (program {current}) of another pin root, {otherRoot}: its frozen set would stop " +
                    $"being enforced. Use that pin root (--pin-root {otherRoot}), or detach it there first ('tcpfreeze --pin-root {otherRoot} detach'), " +
                    "or replace it on purpose (attach --replace)");
            default:
                return options.ReplaceForeignPrograms;
        }
    }

    /// <summary>
    /// Makes sure the frozen set whose connections map is <paramref name="connectionsMapId"/> is
    /// enforced on every interface a freeze must cover (the options' interfaces, or every
    /// supported interface that is up): an interface without TcpFreeze's ingress and egress
    /// programs for that map (an interrupted attach, an interface added or brought up since)
    /// gets them now, from the programs pinned in <paramref name="pins"/>, with the
    /// ingress hook the other interfaces use. Returns the interfaces it attached to. If one
    /// cannot be covered, what this call attached is undone and the freeze is refused,
    /// naming the interface.
    /// </summary>
    public static List<string> EnsureCovered(FreezerOptions options, NamespacePins pins, uint connectionsMapId) => options.Namespace.Run(() =>
    {
        var programs = new Dictionary<ProgramDefinition, BpfProgram?>();
        var points = new KernelAttachPoints(d => programs[d]!);
        List<NetworkInterfaceInfo> targets;
        try
        {
            targets = SelectTargets(options, points);
        }
        catch (TcpFreezeException e)
        {
            throw new TcpFreezeException($"freeze in {options.Namespace}", $"nothing would enforce it: {e.Message}", e);
        }
        var uncovered = new List<NetworkInterfaceInfo>();
        bool tcIngressUsed = false;
        foreach (NetworkInterfaceInfo nic in targets)
        {
            bool xdp = !nic.IsLayer3 && ProgramOwnership.UsesMap(points.QueryXdp(nic.Index), connectionsMapId);
            bool tcIngress = ProgramOwnership.UsesMap(points.QueryTc(nic.Index, TcDirection.Ingress), connectionsMapId);
            bool egress = ProgramOwnership.UsesMap(points.QueryTc(nic.Index, TcDirection.Egress), connectionsMapId);
            // Loopback's hook is fixed (IngressHookFor) and L3 devices always use TC ingress: only the
            // other interfaces tell which hook the rest use.
            tcIngressUsed |= tcIngress && !xdp && !nic.IsLayer3 && nic.HardwareType != NetworkInterfaceInfo.Loopback;
            if (!(xdp || tcIngress) || !egress)
                uncovered.Add(nic);
        }
        if (uncovered.Count == 0)
            return [];

        string names = string.Join(", ", uncovered.Select(n => n.Name));
        string operation = $"freeze in {options.Namespace}";
        IngressHook hook = tcIngressUsed ? IngressHook.Tc : IngressHook.Xdp;
        // Only the programs these interfaces need: a pin directory of an older version, without the L3 programs, still covers Ethernet.
        ProgramDefinition[] needed = uncovered.SelectMany(n => { var (i, e) = KernelObjects.ProgramsFor(n, hook); return new[] { i, e }; }).Distinct().ToArray();
        var xdpDone = new List<XdpAttachment>();
        var tcDone = new List<TcAttachment>();
        var attached = new List<string>();
        try
        {
            foreach (ProgramDefinition definition in needed)
                programs[definition] = TryOpenPinnedProgram(pins, definition);
            if (programs.Values.Any(p => p is null || !p.GetMapIds().Contains(connectionsMapId)))
                throw new TcpFreezeException(operation,
                    $"TcpFreeze's programs are not attached to {names}, so the freeze would not hold there, and the programs pinned in {pins.Directory} " +
                    "are missing or belong to other maps; nothing was frozen", remedy: TcpFreezeRemedy.Attach);
            ProgramOwnership owners = ProgramOwnership.Of(pins).WithMap(connectionsMapId);
            FreezerOptions attachOptions = options with { ReplaceForeignPrograms = false };
            foreach (NetworkInterfaceInfo nic in uncovered)
            {
                try
                {
                    AttachOne(nic, points, IngressHookFor(nic, hook), attachOptions, owners, xdpDone, tcDone);
                    attached.Add(nic.Name);
                }
                catch (Exception e) when (e is TcpFreezeException or BpfException)
                {
                    // An interface removed or taken down meanwhile (container churn) needs no cover.
                    if (!points.ListInterfaces().Any(i => i.Index == nic.Index && i.IsUp))
                        continue;
                    throw new TcpFreezeException(operation,
                        $"{nic.Name} is up but TcpFreeze's programs are not attached to it, so the freeze would not hold there, and attaching them failed " +
                        $"({e.Message}); nothing was frozen", e);
                }
            }
        }
        catch
        {
            RollBack(options, points, xdpDone, tcDone);
            throw;
        }
        finally
        {
            foreach (BpfProgram? program in programs.Values)
                program?.Dispose();
        }
        return attached;
    });

    private static BpfProgram? TryOpenPinnedProgram(NamespacePins pins, ProgramDefinition definition)
    {
        try
        {
            return pins.TryOpenProgram(definition);
        }
        catch (BpfException)
        {
            return null;
        }
    }

    private static List<NetworkInterfaceInfo> SelectTargets(FreezerOptions options, IAttachPoints points)
    {
        IReadOnlyList<NetworkInterfaceInfo> all = points.ListInterfaces();
        if (options.Interfaces is not { Count: > 0 } names)
        {
            List<NetworkInterfaceInfo> up = all.Where(i => i.IsUp && !i.NeverCarriesIp).ToList();
            // An interface that is up may carry the frozen connections; one whose frames the programs cannot parse would let them through, so the freeze is refused.
            if (up.FirstOrDefault(i => !i.IsSupported) is { } unknown)
                throw new TcpFreezeException($"attach to interface '{unknown.Name}'",
                    $"it is up in {options.Namespace}, so it may carry frozen connections, but it is neither Ethernet, loopback nor a known L3 device " +
                    $"(hardware type {unknown.HardwareType}), so TcpFreeze's programs cannot parse its frames; take it down, or name the interfaces to cover explicitly");
            if (up.Count == 0)
                throw new TcpFreezeException("attach", $"no interface is up in {options.Namespace}; bring one up or name interfaces explicitly");
            return up;
        }
        var targets = new List<NetworkInterfaceInfo>();
        foreach (string name in names.Distinct())
        {
            NetworkInterfaceInfo nic = all.FirstOrDefault(i => i.Name == name)
                ?? throw new TcpFreezeException($"attach to interface '{name}'",
                    $"there is no interface '{name}' in {options.Namespace}; 'ip link' lists the interfaces ({string.Join(", ", all.Select(i => i.Name))})");
            if (!nic.IsSupported)
                throw new TcpFreezeException($"attach to interface '{name}'",
                    $"it is neither Ethernet, loopback nor a known L3 device (hardware type {nic.HardwareType}); TcpFreeze's programs cannot parse its frames");
            targets.Add(nic);
        }
        return targets;
    }

    /// <summary>Attaches a TC filter at TcpFreeze's handle, replacing a stale TcpFreeze filter there (or a foreign one when asked to).</summary>
    private static TcAttachment AttachTc(IAttachPoints points, ProgramDefinition definition, NetworkInterfaceInfo nic, TcDirection direction, FreezerOptions options, ProgramOwnership owners)
    {
        uint current = points.QueryTc(nic.Index, direction);
        bool replace = MayReplace(current, points.ProgramId(definition), definition, nic, $"TC {direction.ToString().ToLowerInvariant()}", options, owners);
        return points.AttachTc(definition, nic.Index, direction, replace);
    }

    /// <summary>Undoes what a failed <see cref="Attach(FreezerOptions, PinnedObjects, NamespacePins, List{XdpAttachment}, List{TcAttachment})"/> created; a failure here is logged, not thrown over the first one.</summary>
    public static void RollBack(FreezerOptions options, List<XdpAttachment> xdpDone, List<TcAttachment> tcDone)
        => RollBack(options, new KernelAttachPoints(), xdpDone, tcDone);

    /// <inheritdoc cref="RollBack(FreezerOptions, List{XdpAttachment}, List{TcAttachment})"/>
    internal static void RollBack(FreezerOptions options, IAttachPoints points, List<XdpAttachment> xdpDone, List<TcAttachment> tcDone)
    {
        try
        {
            options.Namespace.Run(() =>
            {
                foreach (TcAttachment t in tcDone.Where(t => t.Created))
                    points.DetachTc(t.IfIndex, t.Direction, t.ProgramId);
                foreach (XdpAttachment x in xdpDone.Where(x => x.Created))
                    points.DetachXdp(x.IfIndex, x.ProgramId);
            });
        }
        catch (Exception e)
        {
            options.CreateLogger(FreezerOptions.LogCategory)?.LogRollbackFailure(e);
        }
    }

    /// <summary>
    /// Detaches this pin root's TcpFreeze programs (see <see cref="ProgramOwnership"/>: pinned
    /// in <paramref name="pins"/> or using its maps) and orphaned ones (pinned nowhere)
    /// from every interface; returns the interfaces touched. Programs of other tools, and
    /// TcpFreeze programs of other pin roots, are never touched.
    /// </summary>
    public static List<string> DetachAll(FreezerOptions options, NamespacePins pins) => DetachAll(options, new KernelAttachPoints(), pins);

    /// <inheritdoc cref="DetachAll(FreezerOptions, NamespacePins)"/>
    internal static List<string> DetachAll(FreezerOptions options, IAttachPoints points, NamespacePins pins)
    {
        ProgramOwnership owners = ProgramOwnership.Of(pins);
        return options.Namespace.Run(() =>
        {
            var names = new List<string>();
            foreach (NetworkInterfaceInfo nic in points.ListInterfaces())
            {
                bool any = DetachXdp(points, nic.Index, owners);
                any |= DetachTc(points, nic.Index, TcDirection.Egress, KernelObjects.TcEgressPrograms, owners);
                any |= DetachTc(points, nic.Index, TcDirection.Ingress, KernelObjects.TcIngressPrograms, owners);
                if (any)
                    names.Add(nic.Name);
            }
            return names;
        });
    }

    /// <summary>This pin root's (and orphaned) TcpFreeze programs attached to the namespace's interfaces; other pin roots' are not listed.</summary>
    public static List<AttachedProgram> FindAttached(FreezerOptions options, NamespacePins pins) => FindAttached(options, new KernelAttachPoints(), pins);

    /// <inheritdoc cref="FindAttached(FreezerOptions, NamespacePins)"/>
    internal static List<AttachedProgram> FindAttached(FreezerOptions options, IAttachPoints points, NamespacePins pins)
    {
        ProgramOwnership owners = ProgramOwnership.Of(pins);
        return options.Namespace.Run(() =>
        {
            var found = new List<AttachedProgram>();
            foreach (NetworkInterfaceInfo nic in points.ListInterfaces())
            {
                uint xdp = points.QueryXdp(nic.Index);
                if (IsOursOrOrphan(xdp, KernelObjects.XdpIngress, owners))
                    found.Add(new AttachedProgram(nic.Name, ProgramAttachPoint.XdpIngress, xdp));
                uint tc = points.QueryTc(nic.Index, TcDirection.Egress);
                if (IsOursOrOrphan(tc, KernelObjects.TcEgressPrograms, owners))
                    found.Add(new AttachedProgram(nic.Name, ProgramAttachPoint.TcEgress, tc));
                uint ingress = points.QueryTc(nic.Index, TcDirection.Ingress);
                if (IsOursOrOrphan(ingress, KernelObjects.TcIngressPrograms, owners))
                    found.Add(new AttachedProgram(nic.Name, ProgramAttachPoint.TcIngress, ingress));
            }
            return found;
        });
    }

    private static bool IsOursOrOrphan(uint id, ProgramDefinition definition, ProgramOwnership owners)
        => owners.Classify(id, definition) is ProgramOwner.Ours or ProgramOwner.Orphan;

    /// <summary>Whether <paramref name="id"/> is ours or an orphan as any of <paramref name="definitions"/> (the programs that share one TC hook).</summary>
    private static bool IsOursOrOrphan(uint id, ProgramDefinition[] definitions, ProgramOwnership owners)
        => Array.Exists(definitions, d => IsOursOrOrphan(id, d, owners));

    /// <summary>Detaches a TcpFreeze XDP program (ours or an orphan) from an interface; a foreign one, or another pin root's, stays.</summary>
    private static bool DetachXdp(IAttachPoints points, int ifIndex, ProgramOwnership owners)
    {
        uint id = points.QueryXdp(ifIndex);
        return IsOursOrOrphan(id, KernelObjects.XdpIngress, owners) && points.DetachXdp(ifIndex, id);
    }

    /// <summary>Detaches a TcpFreeze TC ingress filter (ours or an orphan) at TcpFreeze's handle; a foreign one, or another pin root's, stays.</summary>
    private static bool DetachTcIngress(IAttachPoints points, int ifIndex, ProgramOwnership owners) => DetachTc(points, ifIndex, TcDirection.Ingress, [KernelObjects.TcIngress], owners);

    private static bool DetachTc(IAttachPoints points, int ifIndex, TcDirection direction, ProgramDefinition[] definitions, ProgramOwnership owners)
    {
        uint id = points.QueryTc(ifIndex, direction);
        return IsOursOrOrphan(id, definitions, owners) && points.DetachTc(ifIndex, direction, id);
    }
}
