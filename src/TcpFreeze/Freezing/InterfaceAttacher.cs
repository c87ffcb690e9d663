using Ebpf.Interop;

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
/// </summary>
internal static class InterfaceAttacher
{
    /// <summary>Attaches to the interfaces the options name (or every one that is up), recording what it did for a rollback.</summary>
    public static List<AttachedInterface> Attach(FreezerOptions options, PinnedObjects objects, List<XdpAttachment> xdpDone, List<TcAttachment> tcDone)
        => options.Namespace.Run(() => AttachHere(options, objects, xdpDone, tcDone));

    private static List<AttachedInterface> AttachHere(FreezerOptions options, PinnedObjects objects, List<XdpAttachment> xdpDone, List<TcAttachment> tcDone)
    {
        List<NetworkInterfaceInfo> targets = SelectTargets(options);
        var result = new List<AttachedInterface>();
        BpfProgram xdp = objects.Program(KernelObjects.XdpIngress), tc = objects.Program(KernelObjects.TcEgress), tcIngress = objects.Program(KernelObjects.TcIngress);
        bool useTc = options.IngressHook == IngressHook.Tc;
        foreach (NetworkInterfaceInfo nic in targets)
        {
            XdpAttachMode mode = XdpAttachMode.Auto;
            bool ingressCreated;
            if (useTc)
            {
                TcAttachment i = AttachTc(tcIngress, nic.Index, TcDirection.Ingress, KernelObjects.TcIngress, options);
                tcDone.Add(i);
                ingressCreated = i.Created;
            }
            else
            {
                XdpStatus current = Xdp.Query(nic.Index);
                bool staleOurs = current.ProgramId != 0 && current.ProgramId != xdp.Info.Id && PinnedObjects.IsTcpFreezeProgram(current.ProgramId, KernelObjects.XdpIngress);
                XdpAttachment x = Xdp.Attach(xdp, nic.Index, options.XdpMode.ToInterop(), options.ReplaceForeignPrograms || staleOurs);
                xdpDone.Add(x);
                mode = XdpAttachModes.FromInterop(x.Mode);
                ingressCreated = x.Created;
            }

            TcAttachment t = AttachTc(tc, nic.Index, TcDirection.Egress, KernelObjects.TcEgress, options);
            tcDone.Add(t);
            result.Add(new AttachedInterface(nic.Name, nic.Index, mode, ingressCreated || t.Created) { IngressHook = options.IngressHook });
        }

        // Every interface is attached: only now retire the other ingress hook (see the type's remarks).
        for (int n = 0; n < result.Count; n++)
        {
            try
            {
                bool moved = useTc ? DetachXdp(result[n].Index, xdp.Info.Id) : DetachTcIngress(result[n].Index, tcIngress.Info.Id);
                if (moved)
                    result[n] = result[n] with { Created = true };
            }
            catch (BpfException e)
            {
                options.Logger?.LogIngressMoveFailure(e, result[n].Name);
            }
        }
        return result;
    }

    private static List<NetworkInterfaceInfo> SelectTargets(FreezerOptions options)
    {
        IReadOnlyList<NetworkInterfaceInfo> all = NetworkInterfaceInfo.ListHere();
        if (options.Interfaces is not { Count: > 0 } names)
        {
            List<NetworkInterfaceInfo> up = all.Where(i => i.IsUp && i.IsSupported).ToList();
            if (up.Count == 0)
                throw new TcpFreezeException("attach", $"no Ethernet or loopback interface is up in {options.Namespace}; bring one up or name interfaces explicitly");
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
                    $"it is not an Ethernet or loopback interface (hardware type {nic.HardwareType}); TcpFreeze's programs parse Ethernet frames");
            targets.Add(nic);
        }
        return targets;
    }

    /// <summary>Attaches a TC filter at TcpFreeze's handle, replacing a stale TcpFreeze filter there (or a foreign one when asked to).</summary>
    private static TcAttachment AttachTc(BpfProgram program, int ifIndex, TcDirection direction, ProgramDefinition definition, FreezerOptions options)
    {
        uint current = Tc.Query(ifIndex, direction, BpfNames.TcHandle, BpfNames.TcPriority);
        bool stale = current != 0 && current != program.Info.Id && PinnedObjects.IsTcpFreezeProgram(current, definition);
        return Tc.Attach(program, ifIndex, direction, BpfNames.TcHandle, BpfNames.TcPriority, options.ReplaceForeignPrograms || stale);
    }

    /// <summary>Undoes what a failed <see cref="Attach"/> created; a failure here is logged, not thrown over the first one.</summary>
    public static void RollBack(FreezerOptions options, List<XdpAttachment> xdpDone, List<TcAttachment> tcDone)
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
    }

    /// <summary>
    /// Detaches TcpFreeze's programs (those pinned in <paramref name="directory"/> by id,
    /// any other by kernel name) from every interface; returns the interfaces touched.
    /// Programs of other tools are never touched.
    /// </summary>
    public static List<string> DetachAll(FreezerOptions options, string directory)
    {
        uint xdpId = PinnedObjects.TryPinnedProgramId(directory, KernelObjects.XdpIngress);
        uint tcId = PinnedObjects.TryPinnedProgramId(directory, KernelObjects.TcEgress);
        uint tcIngressId = PinnedObjects.TryPinnedProgramId(directory, KernelObjects.TcIngress);
        return options.Namespace.Run(() =>
        {
            var names = new List<string>();
            foreach (NetworkInterfaceInfo nic in NetworkInterfaceInfo.ListHere())
            {
                bool any = DetachXdp(nic.Index, xdpId);
                any |= DetachTc(nic.Index, TcDirection.Egress, tcId, KernelObjects.TcEgress);
                any |= DetachTcIngress(nic.Index, tcIngressId);
                if (any)
                    names.Add(nic.Name);
            }
            return names;
        });
    }

    /// <summary>TcpFreeze's programs attached to the namespace's interfaces, recognised by their kernel names.</summary>
    public static List<AttachedProgram> FindAttached(FreezerOptions options) => options.Namespace.Run(() =>
    {
        var found = new List<AttachedProgram>();
        foreach (NetworkInterfaceInfo nic in NetworkInterfaceInfo.ListHere())
        {
            uint xdp = Xdp.Query(nic.Index).ProgramId;
            if (xdp != 0 && PinnedObjects.IsTcpFreezeProgram(xdp, KernelObjects.XdpIngress))
                found.Add(new AttachedProgram(nic.Name, ProgramAttachPoint.XdpIngress, xdp));
            uint tc = Tc.Query(nic.Index, TcDirection.Egress, BpfNames.TcHandle, BpfNames.TcPriority);
            if (tc != 0 && PinnedObjects.IsTcpFreezeProgram(tc, KernelObjects.TcEgress))
                found.Add(new AttachedProgram(nic.Name, ProgramAttachPoint.TcEgress, tc));
            uint ingress = Tc.Query(nic.Index, TcDirection.Ingress, BpfNames.TcHandle, BpfNames.TcPriority);
            if (ingress != 0 && PinnedObjects.IsTcpFreezeProgram(ingress, KernelObjects.TcIngress))
                found.Add(new AttachedProgram(nic.Name, ProgramAttachPoint.TcIngress, ingress));
        }
        return found;
    });

    /// <summary>Detaches a TcpFreeze XDP program (ours by id, or any by name) from an interface; a foreign one stays.</summary>
    private static bool DetachXdp(int ifIndex, uint ourId)
    {
        XdpStatus xdp = Xdp.Query(ifIndex);
        return xdp.ProgramId != 0 && (xdp.ProgramId == ourId || PinnedObjects.IsTcpFreezeProgram(xdp.ProgramId, KernelObjects.XdpIngress))
            && Xdp.Detach(ifIndex, xdp.ProgramId);
    }

    /// <summary>Detaches a TcpFreeze TC ingress filter (ours by id, or any by name) at TcpFreeze's handle; a foreign one stays.</summary>
    private static bool DetachTcIngress(int ifIndex, uint ourId) => DetachTc(ifIndex, TcDirection.Ingress, ourId, KernelObjects.TcIngress);

    private static bool DetachTc(int ifIndex, TcDirection direction, uint ourId, ProgramDefinition definition)
    {
        uint id = Tc.Query(ifIndex, direction, BpfNames.TcHandle, BpfNames.TcPriority);
        return id != 0 && (id == ourId || PinnedObjects.IsTcpFreezeProgram(id, definition))
            && Tc.Detach(ifIndex, direction, BpfNames.TcHandle, BpfNames.TcPriority, id);
    }
}
