using System.Net;
using System.Net.Sockets;
using CsCheck;
using TcpFreeze.Ebpf.Interop;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// Property-based tests of the packet path: random sets of frozen connections and
/// endpoints, and random frames (VLAN tags, IPv4 options and fragments, IPv6 extension
/// headers, non-IP ethertypes, every TCP flag byte, truncation anywhere after the
/// Ethernet header) run through both ingress programs (XDP and TC) and the TC egress
/// program with BPF_PROG_TEST_RUN against a privately loaded object. A model says for
/// each frame and direction whether the program can parse it and whether its connection
/// is frozen; the properties compare every program's verdict with the model, so each
/// holds for both ingress hooks (and the two ingress hooks must agree on every frame).
/// </summary>
[Trait("Privileges", "root")]
public sealed class PacketPathPropertyTests : IDisposable
{
    private const uint TcStolen = 4;   // the egress program's drop (see PacketPathTests)
    private const ulong NoLease = 0, FutureDeadline = ulong.MaxValue, PastDeadline = 1;
    /// <summary>Scenarios per property: with up to 24 frames each, a few thousand frames per direction, well under 10 s.</summary>
    private const long Iterations = 250;
    private static readonly byte[] WalkedExtensionKinds =
    [
        Ipv6ExtensionHeader.HopByHopKind, Ipv6ExtensionHeader.RoutingKind, Ipv6ExtensionHeader.FragmentKind,
        Ipv6ExtensionHeader.AuthenticationKind, Ipv6ExtensionHeader.DestinationOptionsKind,
    ];

    private readonly PrivateTcpFreezePrograms _programs = new("tcpfreeze-packet-properties", 256);


    [RootFact]
    public void No_packet_of_an_unfrozen_connection_is_ever_dropped_whatever_its_shape()
    {
        int checkedVerdicts = Check(v => v.Dropped && !v.Frozen ? "a packet of an unfrozen connection was dropped" : null);
        Assert.True(checkedVerdicts > 2_000, $"only {checkedVerdicts} verdicts were checked");
    }

    [RootFact]
    public void Every_parseable_packet_of_a_frozen_connection_is_dropped_in_the_direction_it_travels()
    {
        int frozenParseable = 0;
        Check(v =>
        {
            if (!v.Parseable || !v.Frozen)
                return null;
            frozenParseable++;
            return v.Dropped ? null : "a parseable packet of a frozen connection passed";
        });
        // The generator aims a good share of its frames at frozen connections; make sure it still does.
        Assert.True(frozenParseable > 300, $"only {frozenParseable} parseable frames of frozen connections were generated");
    }

    [RootFact]
    public void A_packet_the_programs_cannot_parse_passes_even_when_its_connection_is_frozen()
    {
        int unparseable = 0;
        Check(v =>
        {
            if (v.Parseable)
                return null;
            unparseable++;
            return v.Dropped ? "a packet the program cannot parse (truncated, non-first fragment, not TCP, beyond the parse limits) was dropped" : null;
        });
        Assert.True(unparseable > 300, $"only {unparseable} unparseable frames were generated");
    }

    /// <summary>
    /// The case the second property found (seed 9at6E3nwmTu1): an endpoint entry for the exact address whose lease has
    /// ended hid an active one for the any-address on the same port, so the packet passed.
    /// </summary>
    [RootFact]
    public void An_ended_entry_for_the_exact_address_does_not_hide_an_active_one_for_the_any_address()
    {
        var local = new IPEndPoint(IPAddress.Parse("198.18.0.1"), 40000);
        var remote = new IPEndPoint(IPAddress.Parse("198.19.1.1"), 8080);
        Install(new Scenario([], [(new EndpointKey(local), PastDeadline), (new EndpointKey(new IPEndPoint(IPAddress.Any, 40000)), FutureDeadline)], []));
        byte[] toLocal = Packets.Tcp(remote, local);
        Assert.True(_programs.IngressDrops(IngressHook.Xdp, toLocal), "XDP ingress passed a packet to a port frozen on the any-address");
        Assert.True(_programs.IngressDrops(IngressHook.Tc, toLocal), "TC ingress passed a packet to a port frozen on the any-address");
        Assert.Equal(TcStolen, _programs.Tc.TestRun(Packets.Tcp(local, remote)).ReturnValue);
    }

    /// <summary>Where a program runs: the two ingress hooks, and egress.</summary>
    private enum Hook { XdpIngress, TcIngress, TcEgress }

    private static readonly Hook[] Hooks = [Hook.XdpIngress, Hook.TcIngress, Hook.TcEgress];

    /// <summary>The model's view of one frame in one direction, and the kernel's verdict.</summary>
    private readonly record struct Verdict(Hook Hook, bool Parseable, bool Frozen, bool Dropped);

    /// <summary>
    /// Runs <see cref="Iterations"/> random scenarios; <paramref name="property"/> returns
    /// a failure message for a verdict that breaks it. Returns how many verdicts it saw.
    /// </summary>
    private int Check(Func<Verdict, string?> property)
    {
        int verdicts = 0;
        Scenarios.Sample(scenario =>
        {
            Install(scenario);
            foreach (Probe probe in scenario.Probes)
            {
                byte[] bytes = Packets.Build(probe.Frame).AsSpan(0, probe.Length).ToArray();
                bool parseable = IsParseable(probe.Frame, probe.Length);
                bool? xdpIngressDropped = null;
                foreach (Hook hook in Hooks)
                {
                    bool ingress = hook != Hook.TcEgress;
                    ConnectionKey key = ingress
                        ? new ConnectionKey(probe.Frame.Destination, probe.Frame.Source)
                        : new ConnectionKey(probe.Frame.Source, probe.Frame.Destination);
                    if (hook != Hook.XdpIngress && KernelRefusesSkb(probe.Frame, probe.Length))
                    {
                        // The kernel builds no skb from an untagged IP frame cut inside its fixed IP header, so
                        // TC never sees one; BPF_PROG_TEST_RUN says EINVAL. Check that and move on.
                        Assert.Throws<BpfException>(() => (hook == Hook.TcEgress ? _programs.Tc : _programs.TcIngress).TestRun(bytes));
                        continue;
                    }
                    bool dropped = hook switch
                    {
                        Hook.XdpIngress => _programs.IngressDrops(IngressHook.Xdp, bytes),
                        Hook.TcIngress => _programs.IngressDrops(IngressHook.Tc, bytes),
                        _ => _programs.Tc.TestRun(bytes).ReturnValue == TcStolen,
                    };
                    var verdict = new Verdict(hook, parseable, scenario.IsFrozen(key), dropped);
                    verdicts++;
                    string? failure = property(verdict);
                    if (hook == Hook.XdpIngress)
                        xdpIngressDropped = dropped;
                    else if (hook == Hook.TcIngress && xdpIngressDropped is { } xdp && xdp != dropped)
                        failure ??= $"the XDP ingress program {(xdp ? "dropped" : "passed")} this frame";
                    if (failure is not null)
                        throw new Xunit.Sdk.XunitException(
                            $"{failure}: {hook} {(dropped ? "dropped" : "passed")} " +
                            $"{probe} (key {key}, parseable {parseable}, frozen {verdict.Frozen})");
                }
            }
        }, iter: Iterations, threads: 1, print: s => s.ToString());
        return verdicts;
    }

    /// <summary>Makes the maps hold exactly the scenario's frozen keys (later duplicates win, as in the map).</summary>
    private void Install(Scenario scenario)
    {
        foreach (ConnectionKey key in _programs.Connections.GetKeys())
            _programs.Connections.Delete(key);
        foreach (EndpointKey key in _programs.Endpoints.GetKeys())
            _programs.Endpoints.Delete(key);
        _programs.Config.Update(0u, scenario.Endpoints.Length > 0 ? 1UL : 0UL);
        foreach ((ConnectionKey key, ulong deadline) in scenario.Connections)
            _programs.Connections.Update(key, new FreezeEntry { DeadlineNs = deadline });
        foreach ((EndpointKey key, ulong deadline) in scenario.Endpoints)
            _programs.Endpoints.Update(key, new FreezeEntry { DeadlineNs = deadline });
    }

    /// <summary>
    /// What the programs can parse: at most two VLAN tags, then IPv4 (any header length,
    /// fragment offset 0) or IPv6 (extension headers of the walked kinds, the fragment
    /// header with offset 0), protocol TCP, and the whole 20-byte TCP header present.
    /// </summary>
    private static bool IsParseable(Frame frame, int length)
    {
        if (frame.VlanTags.Length > 2 || frame.EtherTypeOverride is not null || frame.Protocol != 6)
            return false;
        if (length < frame.TransportOffset + 20)
            return false;
        if (!frame.IsIPv6)
            return (frame.Ipv4FragmentField & 0x1FFF) == 0;
        return frame.Ipv6Extensions.All(e => WalkedExtensionKinds.Contains(e.Kind)
            && (e.Kind != Ipv6ExtensionHeader.FragmentKind || (e.FragmentField & 0xFFF8) == 0));
    }

    private static bool KernelRefusesSkb(Frame frame, int length)
        => frame.VlanTags.Length == 0 && frame.EtherTypeOverride is null && length < 14 + (frame.IsIPv6 ? 40 : 20);

    private sealed record Probe(Frame Frame, int Length)
    {
        public override string ToString() => $"[{Frame}, {Length} of {Frame.TransportOffset + 20} bytes]";
    }

    private sealed record Scenario((ConnectionKey Key, ulong Deadline)[] Connections, (EndpointKey Key, ulong Deadline)[] Endpoints, Probe[] Probes)
    {
        /// <summary>Whether the kernel should treat <paramref name="key"/> as frozen (an entry whose lease has not ended).</summary>
        public bool IsFrozen(ConnectionKey key)
        {
            IPAddress any = key.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any;
            return Active(Connections, key)
                || Active(Endpoints, new EndpointKey(key.Local))
                || Active(Endpoints, new EndpointKey(new IPEndPoint(any, key.Local.Port)));
        }

        private static bool Active<TKey>((TKey Key, ulong Deadline)[] entries, TKey key) where TKey : IEquatable<TKey>
        {
            int last = Array.FindLastIndex(entries, e => e.Key.Equals(key));
            return last >= 0 && entries[last].Deadline != PastDeadline;
        }

        public override string ToString()
            => $"connections [{string.Join("; ", Connections.Select(c => $"{c.Key} @{c.Deadline}"))}] " +
               $"endpoints [{string.Join("; ", Endpoints.Select(e => $"{e.Key} @{e.Deadline}"))}] " +
               $"probes [{string.Join(" ", Probes.Select(p => p.ToString()))}]";
    }

    // ---- Generators ----

    /// <summary>Addresses in 198.18.0.0/15, mostly from a small pool so frames hit frozen keys and near misses.</summary>
    private static readonly Gen<IPAddress> Ipv4Address = Gen.Frequency(
        (4, Gen.Int[1, 4].Select(i => new IPAddress([198, 18, 0, (byte)i]))),
        (1, Gen.Int[0, 0x1FFFF].Select(i => new IPAddress([198, (byte)(18 + (i >> 16)), (byte)(i >> 8), (byte)i]))));

    /// <summary>Addresses in 2001:db8::/32, mostly from a small pool.</summary>
    private static readonly Gen<IPAddress> Ipv6Address = Gen.Frequency(
        (4, Gen.Int[1, 4].Select(i => IPAddress.Parse($"2001:db8::{i}"))),
        (1, Gen.Byte.Array[12].Select(tail => new IPAddress([0x20, 0x01, 0x0d, 0xb8, .. tail]))));

    private static readonly Gen<int> Port = Gen.Frequency((4, Gen.OneOf(8080, 40000, 40001)), (1, Gen.Int[1, 65535]));

    private static Gen<IPEndPoint> Endpoint(bool v6) => Gen.Select(v6 ? Ipv6Address : Ipv4Address, Port, (a, p) => new IPEndPoint(a, p));

    /// <summary>Source and destination of one family.</summary>
    private static readonly Gen<(IPEndPoint Source, IPEndPoint Destination)> Tuple =
        Gen.Bool.SelectMany(v6 => Gen.Select(Endpoint(v6), Endpoint(v6)));

    private static readonly Gen<ulong> Deadline = Gen.Frequency((4, Gen.Const(NoLease)), (2, Gen.Const(FutureDeadline)), (1, Gen.Const(PastDeadline)));

    private static readonly Gen<(ConnectionKey, ulong)> FrozenConnection =
        Gen.Select(Tuple, Deadline, (t, d) => (new ConnectionKey(t.Source, t.Destination), d));

    private static readonly Gen<(EndpointKey, ulong)> FrozenEndpoint =
        Gen.Bool.SelectMany(v6 => Gen.Select(
            Gen.Frequency((2, v6 ? Ipv6Address : Ipv4Address), (1, Gen.Const(v6 ? IPAddress.IPv6Any : IPAddress.Any))),
            Port, Deadline, (a, p, d) => (new EndpointKey(new IPEndPoint(a, p)), d)));

    private static readonly Gen<Ipv6ExtensionHeader> Ipv6Extension = Gen.Frequency(
        (3, Gen.Select(Gen.OneOf(Ipv6ExtensionHeader.HopByHopKind, Ipv6ExtensionHeader.RoutingKind, Ipv6ExtensionHeader.DestinationOptionsKind),
            Gen.Int[1, 5], (kind, units) => new Ipv6ExtensionHeader(kind, units * 8))),
        (1, Gen.Int[2, 8].Select(units => new Ipv6ExtensionHeader(Ipv6ExtensionHeader.AuthenticationKind, units * 4))),
        (2, Gen.Frequency((2, Gen.OneOf((ushort)0, (ushort)1)), (1, Gen.UShort))
            .Select(field => new Ipv6ExtensionHeader(Ipv6ExtensionHeader.FragmentKind, 8, field))),
        // Kinds the program does not walk (ESP, no next header, mobility, experimental): it passes them.
        (1, Gen.OneOf((byte)50, (byte)59, (byte)135, (byte)253).Select(kind => new Ipv6ExtensionHeader(kind))));

    private static Gen<Frame> Shape((IPEndPoint Source, IPEndPoint Destination) tuple)
    {
        bool v6 = tuple.Source.AddressFamily == AddressFamily.InterNetworkV6;
        Gen<ushort[]> vlanTags = Gen.OneOf(Packets.EtherVlan, Packets.EtherQinQ).Array[0, 2]
            .SelectMany(tags => Gen.Frequency((9, Gen.Const(tags)), (1, Gen.Const(tags.Concat([Packets.EtherVlan, Packets.EtherVlan]).ToArray()))));
        Gen<ushort?> etherType = Gen.Frequency(
            (12, Gen.Const((ushort?)null)),
            (1, Gen.UShort.Where(t => t is not (Packets.EtherIPv4 or Packets.EtherIPv6 or Packets.EtherVlan or Packets.EtherQinQ)).Select(t => (ushort?)t)));
        // For IPv6 a final next header of a walked kind would make the TCP header look like another extension header.
        Gen<byte> protocol = Gen.Frequency((8, Gen.Const((byte)6)), (1, Gen.Byte.Where(p => !v6 || !WalkedExtensionKinds.Contains(p))));
        Gen<ushort> fragmentField = Gen.Frequency((3, Gen.OneOf((ushort)0, (ushort)0x4000, (ushort)0x2000)), (2, Gen.UShort));
        return Gen.Select(vlanTags, etherType, protocol, Gen.Int[0, 10], fragmentField, Ipv6Extension.Array[0, 3], Gen.Byte,
            (tags, type, proto, optionWords, fragment, extensions, flags) => new Frame(tuple.Source, tuple.Destination)
            {
                VlanTags = tags,
                EtherTypeOverride = type,
                Protocol = proto,
                Ipv4OptionBytes = v6 ? 0 : optionWords * 4,
                Ipv4FragmentField = v6 ? (ushort)0 : fragment,
                Ipv6Extensions = v6 ? extensions : [],
                TcpFlags = flags,
            });
    }

    /// <summary>A frame aimed (mostly) at a frozen key in either orientation, whole or truncated after the Ethernet header.</summary>
    private static Gen<Probe> ProbeFor((ConnectionKey Key, ulong)[] connections, (EndpointKey Key, ulong)[] endpoints)
    {
        var aimed = new List<(int, IGen<(IPEndPoint, IPEndPoint)>)> { (2, Tuple) };
        if (connections.Length > 0)
            aimed.Add((3, Gen.Select(Gen.Int[0, connections.Length - 1], Gen.Bool, (i, inbound) => inbound
                ? (connections[i].Key.Remote, connections[i].Key.Local)
                : (connections[i].Key.Local, connections[i].Key.Remote))));
        if (endpoints.Length > 0)
            aimed.Add((1, Gen.Select(Gen.Int[0, endpoints.Length - 1], Tuple, (i, t) =>
            {
                IPEndPoint local = endpoints[i].Key.Endpoint;
                if (endpoints[i].Key.IsAnyAddress)
                    local = new IPEndPoint(local.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Parse("198.18.0.9") : IPAddress.Parse("2001:db8::9"), local.Port);
                IPEndPoint remote = local.AddressFamily == AddressFamily.InterNetwork
                    ? new IPEndPoint(IPAddress.Parse("198.19.1.1"), t.Source.Port)
                    : new IPEndPoint(IPAddress.Parse("2001:db8:1::1"), t.Source.Port);
                return (remote, local); // inbound to the endpoint; the egress run sees it as outbound from the remote
            })));
        return Gen.Frequency(aimed.ToArray())
            .SelectMany(tuple => Shape(tuple))
            .SelectMany(frame =>
            {
                int full = Packets.Build(frame).Length;
                return Gen.Frequency((3, Gen.Const(full)), (2, Gen.Int[14, full])).Select(length => new Probe(frame, length));
            });
    }

    private static readonly Gen<Scenario> Scenarios =
        from connections in FrozenConnection.Array[0, 6]
        from endpoints in Gen.Frequency((3, Gen.Const(Array.Empty<(EndpointKey, ulong)>() as (EndpointKey, ulong)[])), (1, FrozenEndpoint.Array[1, 2]))
        from probes in ProbeFor(connections, endpoints).Array[1, 24]
        select new Scenario(connections, endpoints, probes);

    public void Dispose() => _programs.Dispose();
}
