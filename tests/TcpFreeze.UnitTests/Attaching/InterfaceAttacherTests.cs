using TcpFreeze.Ebpf.Interop;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// The attach transaction's rules over in-memory attach points: an attach that fails part-way
/// is undone exactly (what it created goes, what was there stays), and an ingress hook moves
/// only once every interface has the new one. The kernel tests (AttachTests) run the same rules on veths.
/// </summary>
public sealed class InterfaceAttacherTests
{
    // Nothing is pinned here: ownership knows only the programs this attach loads, so no rule below asks the kernel whose a program is.
    private static readonly NamespacePins NoPins = NamespacePins.At("/nonexistent/tcpfreeze-unit/netns-1");

    private readonly InMemoryAttachPoints _points = new();
    private readonly List<XdpAttachment> _xdpDone = [];
    private readonly List<TcAttachment> _tcDone = [];

    private List<AttachedInterface> Attach(FreezerOptions options) => InterfaceAttacher.Attach(options, _points, NoPins, _xdpDone, _tcDone);

    /// <summary>What TcpFreezer.Attach does: attach, and on failure roll back what this attach recorded.</summary>
    private Exception AttachFailing(FreezerOptions options)
    {
        Exception e = Assert.ThrowsAny<Exception>(() => Attach(options));
        InterfaceAttacher.RollBack(options, _points, _xdpDone, _tcDone);
        return e;
    }

    private uint Id(ProgramDefinition definition) => _points.Programs[definition];

    [Fact]
    public void An_attach_that_fails_on_the_second_interface_leaves_no_program_on_the_first()
    {
        NetworkInterfaceInfo first = _points.Add("veth0");
        NetworkInterfaceInfo second = _points.Add("veth1");
        _points.Failing.Add((second.Index, "tc egress"));

        Exception e = AttachFailing(new FreezerOptions());

        Assert.IsType<BpfException>(e);
        Assert.Contains(_xdpDone, x => x.IfIndex == first.Index && x.Created); // it had got that far
        Assert.Empty(_points.Xdp);
        Assert.Empty(_points.Tc);
    }

    [Fact]
    public void A_rollback_keeps_the_programs_that_were_attached_before()
    {
        NetworkInterfaceInfo first = _points.Add("veth0");
        NetworkInterfaceInfo second = _points.Add("veth1");
        // veth0 is covered already, by these very programs (an earlier attach).
        _points.Xdp[first.Index] = Id(KernelObjects.XdpIngress);
        _points.Tc[(first.Index, TcDirection.Egress)] = Id(KernelObjects.TcEgress);
        _points.Failing.Add((second.Index, "tc egress"));

        AttachFailing(new FreezerOptions());

        Assert.Equal(new Dictionary<int, uint> { [first.Index] = Id(KernelObjects.XdpIngress) }, _points.Xdp);
        Assert.Equal(new Dictionary<(int, TcDirection), uint> { [(first.Index, TcDirection.Egress)] = Id(KernelObjects.TcEgress) }, _points.Tc);
    }

    [Fact]
    public void Every_interface_that_is_up_gets_ingress_and_egress_and_loopback_always_tc_ingress()
    {
        NetworkInterfaceInfo lo = _points.Add("lo", NetworkInterfaceInfo.Loopback);
        NetworkInterfaceInfo eth = _points.Add("veth0");
        _points.Add("veth1", up: false);

        List<AttachedInterface> attached = Attach(new FreezerOptions());

        Assert.Equal(["lo", "veth0"], attached.Select(a => a.Name));
        Assert.Equal(IngressHook.Tc, attached[0].IngressHook);
        Assert.Equal(IngressHook.Xdp, attached[1].IngressHook);
        Assert.Equal(new Dictionary<int, uint> { [eth.Index] = Id(KernelObjects.XdpIngress) }, _points.Xdp);
        Assert.Equal(Id(KernelObjects.TcIngress), _points.Tc[(lo.Index, TcDirection.Ingress)]);
        Assert.Equal(Id(KernelObjects.TcEgress), _points.Tc[(lo.Index, TcDirection.Egress)]);
        Assert.Equal(Id(KernelObjects.TcEgress), _points.Tc[(eth.Index, TcDirection.Egress)]);
        Assert.All(attached, a => Assert.True(a.Created));
    }

    [Fact]
    public void The_ingress_hook_moves_only_after_every_interface_has_the_new_one()
    {
        NetworkInterfaceInfo first = _points.Add("veth0");
        NetworkInterfaceInfo second = _points.Add("veth1");
        foreach (NetworkInterfaceInfo nic in new[] { first, second })
        {
            _points.Tc[(nic.Index, TcDirection.Ingress)] = Id(KernelObjects.TcIngress);
            _points.Tc[(nic.Index, TcDirection.Egress)] = Id(KernelObjects.TcEgress);
        }
        _points.Failing.Add((second.Index, "xdp"));

        // Moving TC ingress to XDP fails on veth1: veth0 keeps its TC ingress program, never unguarded.
        AttachFailing(new FreezerOptions { IngressHook = IngressHook.Xdp });
        Assert.Equal(Id(KernelObjects.TcIngress), _points.Tc[(first.Index, TcDirection.Ingress)]);
        Assert.Equal(Id(KernelObjects.TcIngress), _points.Tc[(second.Index, TcDirection.Ingress)]);
        Assert.Empty(_points.Xdp);

        // Once nothing fails, both move, and the move counts as a change.
        _points.Failing.Clear();
        _xdpDone.Clear();
        _tcDone.Clear();
        List<AttachedInterface> attached = Attach(new FreezerOptions { IngressHook = IngressHook.Xdp });
        Assert.False(_points.Tc.ContainsKey((first.Index, TcDirection.Ingress)));
        Assert.False(_points.Tc.ContainsKey((second.Index, TcDirection.Ingress)));
        Assert.Equal(2, _points.Xdp.Count);
        Assert.All(attached, a => Assert.True(a.Created));
    }
}
