using Ebpf.Interop;
using Microsoft.Extensions.Logging;

namespace TcpFreeze;

/// <summary>
/// The kernel objects of one namespace's pin directory: four maps and three programs
/// (both ingress programs are loaded and pinned whichever hook is used, so switching
/// hooks never reloads anything).
/// Maps that are pinned already are reused (they hold the frozen set); if anything is
/// missing, the programs are loaded afresh on top of the surviving maps, so programs
/// and maps always agree.
/// </summary>
internal sealed class PinnedObjects
{
    private PinnedObjects(BpfMap connections, BpfMap endpoints, BpfMap counters, BpfMap config, BpfProgram xdp, BpfProgram tc, BpfProgram tcIngress)
    {
        TcIngress = tcIngress;
        Config = config;
        Connections = connections;
        Endpoints = endpoints;
        Counters = counters;
        Xdp = xdp;
        Tc = tc;
    }

    public BpfMap Connections { get; }
    public BpfMap Endpoints { get; }
    public BpfMap Counters { get; }
    public BpfMap Config { get; }
    public BpfProgram? Xdp { get; private set; }
    public BpfProgram? Tc { get; private set; }
    public BpfProgram? TcIngress { get; private set; }

    public static PinnedObjects OpenOrLoad(string directory, FreezerOptions options, List<string> createdPins)
    {
        string Pin(string name) => Path.Combine(directory, name);
        BpfMap? connections = null, endpoints = null, counters = null, config = null;
        BpfProgram? xdp = null, tc = null, tcIngress = null;
        try
        {
            connections = TryOpenMap(directory, BpfNames.ConnectionsPin, ConnectionKey.Size);
            endpoints = TryOpenMap(directory, BpfNames.EndpointsPin, EndpointKey.Size);
            counters = TryOpenMap(directory, BpfNames.CountersPin, sizeof(uint));
            config = TryOpenMap(directory, BpfNames.ConfigPin, sizeof(uint));
            xdp = TryOpenProgram(Pin(BpfNames.XdpPin));
            tc = TryOpenProgram(Pin(BpfNames.TcPin));
            tcIngress = TryOpenProgram(Pin(BpfNames.TcIngressPin));
            if (connections is not null && endpoints is not null && counters is not null && config is not null && xdp is not null && tc is not null && tcIngress is not null)
                return new PinnedObjects(connections, endpoints, counters, config, xdp, tc, tcIngress);

            using BpfObject obj = BpfObject.Open(BpfNames.LoadObject(), "tcpfreeze");
            if (connections is null)
                obj.SetMaxEntries(BpfNames.ConnectionsMap, options.MaxConnections);
            else
                obj.ReuseMap(BpfNames.ConnectionsMap, connections);
            if (endpoints is null)
                obj.SetMaxEntries(BpfNames.EndpointsMap, options.MaxEndpoints);
            else
                obj.ReuseMap(BpfNames.EndpointsMap, endpoints);
            if (counters is not null)
                obj.ReuseMap(BpfNames.CountersMap, counters);
            if (config is not null)
                obj.ReuseMap(BpfNames.ConfigMap, config);
            obj.Load();

            connections ??= PinNew(obj.GetMap(BpfNames.ConnectionsMap), Pin(BpfNames.ConnectionsPin), createdPins);
            endpoints ??= PinNew(obj.GetMap(BpfNames.EndpointsMap), Pin(BpfNames.EndpointsPin), createdPins);
            counters ??= PinNew(obj.GetMap(BpfNames.CountersMap), Pin(BpfNames.CountersPin), createdPins);
            if (config is null)
            {
                config = PinNew(obj.GetMap(BpfNames.ConfigMap), Pin(BpfNames.ConfigPin), createdPins);
                // Surviving endpoint entries must be enforced by the new programs.
                if (!endpoints.IsEmpty())
                    EndpointGate.Open(config);
            }

            // Fresh programs use exactly these maps; older program pins may not.
            xdp?.Dispose();
            tc?.Dispose();
            tcIngress?.Dispose();
            xdp = RePin(obj.GetProgram(BpfNames.XdpProgram), Pin(BpfNames.XdpPin), createdPins);
            tc = RePin(obj.GetProgram(BpfNames.TcProgram), Pin(BpfNames.TcPin), createdPins);
            tcIngress = RePin(obj.GetProgram(BpfNames.TcIngressProgram), Pin(BpfNames.TcIngressPin), createdPins);
            return new PinnedObjects(connections, endpoints, counters, config, xdp, tc, tcIngress);
        }
        catch
        {
            config?.Dispose();
            connections?.Dispose();
            endpoints?.Dispose();
            counters?.Dispose();
            xdp?.Dispose();
            tc?.Dispose();
            tcIngress?.Dispose();
            throw;
        }
    }

    public static BpfMap OpenMap(string directory, string pin, int keySize)
        => TryOpenMap(directory, pin, keySize)
           ?? throw new TcpFreezeException($"open {Path.Combine(directory, pin)}", "the pin is missing; run 'tcpfreeze detach' and 'tcpfreeze attach' to rebuild the state");

    public static BpfMap? TryOpenMap(string directory, string pin, int keySize)
    {
        string path = Path.Combine(directory, pin);
        if (!File.Exists(path))
            return null;
        BpfMap map = BpfMap.OpenPinned(path);
        try
        {
            CheckLayout(map, pin, keySize, path);
        }
        catch
        {
            map.Dispose();
            throw;
        }
        return map;
    }

    /// <summary>Refuses a map (named <paramref name="what"/> in the error) whose key or value size is not this version's.</summary>
    public static void CheckLayout(BpfMap map, string pin, int keySize, string what)
    {
        int valueSize = pin is BpfNames.CountersPin or BpfNames.ConfigPin ? sizeof(ulong) : System.Runtime.CompilerServices.Unsafe.SizeOf<FreezeEntry>();
        if (map.Info.KeySize != keySize || map.Info.ValueSize != valueSize)
            throw new TcpFreezeException($"open {what}",
                $"the map has {map.Info.KeySize}-byte keys and {map.Info.ValueSize}-byte values, not {keySize} and {valueSize}: " +
                "it was made by an incompatible TcpFreeze version. Run 'tcpfreeze detach' to remove it");
    }

    private static BpfProgram? TryOpenProgram(string path) => File.Exists(path) ? BpfProgram.OpenPinned(path) : null;

    public static uint TryPinnedProgramId(string directory, string pin)
    {
        try
        {
            using BpfProgram? program = TryOpenProgram(Path.Combine(directory, pin));
            return program?.Info.Id ?? 0;
        }
        catch (BpfException)
        {
            return 0;
        }
    }

    /// <summary>Whether program <paramref name="id"/> is a TcpFreeze program (by its kernel name).</summary>
    public static bool IsTcpFreezeProgram(uint id, string name)
    {
        using BpfProgram? program = BpfProgram.TryOpenById(id);
        return program?.Info.Name == name;
    }

    private static BpfMap PinNew(BpfMap map, string path, List<string> createdPins)
    {
        map.Pin(path);
        createdPins.Add(path);
        return map;
    }

    private static BpfProgram RePin(BpfProgram program, string path, List<string> createdPins)
    {
        try
        {
            if (BpfFs.Unpin(path) == false)
                createdPins.Add(path);
            program.Pin(path);
            return program;
        }
        catch
        {
            program.Dispose();
            throw;
        }
    }

    public void DisposePrograms()
    {
        Xdp?.Dispose();
        Tc?.Dispose();
        TcIngress?.Dispose();
        Xdp = null;
        Tc = null;
        TcIngress = null;
    }

    public void DisposeAll()
    {
        DisposePrograms();
        Connections.Dispose();
        Endpoints.Dispose();
        Counters.Dispose();
        Config.Dispose();
    }
}

/// <summary>
/// The tf_config flag that lets the kernel programs skip endpoint lookups while no
/// endpoint is frozen. Opened before endpoints are inserted and closed only after
/// the endpoints map is seen empty (under the pin lock), so it is never clear while
/// an endpoint is frozen.
/// </summary>
internal static class EndpointGate
{
    public static void Open(BpfMap config) => config.Update(0u, 1UL);

    public static void CloseIfEmpty(BpfMap config, BpfMap endpoints)
    {
        if (endpoints.IsEmpty())
            config.Update(0u, 0UL);
    }
}

internal static partial class Log
{
    [LoggerMessage(Level = LogLevel.Warning, Message = "Rolling back a failed attach also failed; run 'tcpfreeze detach' to clean up")]
    public static partial void LogRollbackFailure(this ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Moving TcpFreeze's ingress program on {Interface} left the old hook attached too (harmless: both drop the same packets); run 'tcpfreeze attach' again to retry")]
    public static partial void LogIngressMoveFailure(this ILogger logger, Exception exception, string @interface);
}
