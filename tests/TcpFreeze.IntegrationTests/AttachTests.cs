using System.Net;
using System.Net.Sockets;
using TcpFreeze.Ebpf.Interop;
using TcpFreeze.Tests.Infrastructure;
using static TcpFreeze.Tests.Infrastructure.KernelState;
using TcpFreeze.Native;

namespace TcpFreeze.Tests;

/// <summary>Attach, detach and every refusal: what the kernel holds afterwards, checked with the kernel.</summary>
[Trait("Privileges", "root")]
public sealed class AttachTests
{
    private static ConnectionKey Key(int i) => ConnectionKey.Parse($"198.18.0.1:{1000 + i}", "198.18.0.2:5000");

    [RootFact]
    public void Attaching_twice_changes_nothing_and_keeps_the_frozen_set()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B);
        try
        {
            using (TcpFreezer first = TcpFreezer.Attach(options))
            {
                Assert.All(first.AttachedInterfaces, i => Assert.True(i.Created));
                first.Freeze([Key(1)]);
            }
            uint programId = network.B.Run(() => Xdp.Query(NetworkInterfaceNames.GetIndex(TestNetwork.Interface)).ProgramId);

            using TcpFreezer second = TcpFreezer.Attach(options);
            Assert.All(second.AttachedInterfaces, i => Assert.False(i.Created));
            Assert.Equal(programId, network.B.Run(() => Xdp.Query(NetworkInterfaceNames.GetIndex(TestNetwork.Interface)).ProgramId));
            Assert.Equal(Key(1), Assert.Single(second.ListConnections()).Key);
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
        AssertNothingLeft(network.B, options);
    }

    [RootFact]
    public void Detach_leaves_no_program_no_filter_and_no_pin_in_the_kernel()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B);
        using (TcpFreezer freezer = TcpFreezer.Attach(options))
            freezer.Freeze([Key(1)]);
        Assert.Contains("xdp", Run.Checked("ip", "-n", network.NameB, "-d", "link", "show", "dev", TestNetwork.Interface));
        Assert.Contains("tf_tc_egress", Run.Checked("tc", "-n", network.NameB, "filter", "show", "dev", TestNetwork.Interface, "egress"));

        DetachResult result = TcpFreezer.Detach(options);
        Assert.Contains(TestNetwork.Interface, result.Interfaces);
        Assert.Contains("lo", result.Interfaces);
        Assert.Equal(KernelObjects.PinNames.Length, result.PinsRemoved);
        AssertNothingLeft(network.B, options);
    }

    [RootFact]
    public void Namespaces_keep_separate_frozen_sets_and_detaching_one_leaves_the_other()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions a = pins.Options(network.A), b = pins.Options(network.B);
        try
        {
            using TcpFreezer freezerA = TcpFreezer.Attach(a);
            using TcpFreezer freezerB = TcpFreezer.Attach(b);
            Assert.NotEqual(freezerA.PinDirectory, freezerB.PinDirectory);
            freezerA.Freeze([Key(1)]);
            freezerB.Freeze([Key(2), Key(3)]);
            Assert.Equal(Key(1), Assert.Single(freezerA.ListConnections()).Key);
            Assert.Equal(2, freezerB.ListConnections().Count);

            TcpFreezer.Detach(a);
            AssertNothingLeft(network.A, a);
            using TcpFreezer reopened = TcpFreezer.Open(b);
            Assert.Equal(2, reopened.ListConnections().Count);
            Assert.NotEqual(0u, network.B.Run(() => Xdp.Query(NetworkInterfaceNames.GetIndex(TestNetwork.Interface)).ProgramId));
        }
        finally
        {
            TcpFreezer.Detach(a);
            TcpFreezer.Detach(b);
        }
    }

    [RootFact]
    public void A_full_map_refuses_the_whole_batch_and_leaves_earlier_entries_as_they_were()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B) with { MaxConnections = 16 };
        try
        {
            using TcpFreezer freezer = TcpFreezer.Attach(options);
            Assert.Equal(16u, freezer.ConnectionCapacity);
            freezer.Freeze(Enumerable.Range(0, 10).Select(Key), lease: Lease.Forever);

            // Key 0 is frozen already (without a lease); keys 10..19 would overflow the map.
            ConnectionKey[] overflow = [Key(0), .. Enumerable.Range(10, 10).Select(Key)];
            var e = Assert.Throws<TcpFreezeException>(() => freezer.Freeze(overflow, lease: TimeSpan.FromMinutes(5)));
            Assert.Contains("full", e.Message);
            Assert.Contains("nothing was frozen", e.Message);

            IReadOnlyList<FrozenConnection> listed = freezer.ListConnections();
            Assert.Equal(Enumerable.Range(0, 10).Select(Key).ToHashSet(), listed.Select(c => c.Key).ToHashSet());
            Assert.Null(listed.Single(c => c.Key == Key(0)).LeaseRemaining);
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }

    [RootFact]
    public void Thawing_what_is_not_frozen_is_reported_not_an_error()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B);
        try
        {
            using TcpFreezer freezer = TcpFreezer.Attach(options);
            freezer.Freeze([Key(1)], [EndpointKey.Parse("0.0.0.0:80")]);
            ThawResult result = freezer.Thaw([Key(2), Key(1), Key(3)], [EndpointKey.Parse("0.0.0.0:81")]);
            Assert.Equal(1, result.ConnectionsThawed);
            Assert.Equal([Key(2), Key(3)], result.NotFrozenConnections);
            Assert.Equal(EndpointKey.Parse("0.0.0.0:81"), Assert.Single(result.NotFrozenEndpoints));
            Assert.Equal(1, freezer.ThawAll().EndpointsThawed);
            Assert.Empty(freezer.ListEndpoints());
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }

    [RootFact]
    public void A_foreign_xdp_program_is_never_replaced_unless_asked_and_a_refused_attach_leaves_nothing()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B);
        using ForeignXdpProgram foreign = ForeignXdpProgram.Pass();
        foreign.AttachTo(network.B, TestNetwork.Interface);
        try
        {
            var e = Assert.Throws<TcpFreezeException>(() => TcpFreezer.Attach(options));
            Assert.Equal(Errnos.EEXIST, e.Errno);
            Assert.Contains("foreign_pass", e.Message);
            Assert.Contains("refusing to replace", e.Message);
            Assert.Equal(foreign.Id, ForeignXdpProgram.AttachedId(network.B, TestNetwork.Interface));
            AssertNothingLeft(network.B, options);

            using TcpFreezer forced = TcpFreezer.Attach(options with { ReplaceForeignPrograms = true });
            Assert.NotEqual(foreign.Id, ForeignXdpProgram.AttachedId(network.B, TestNetwork.Interface));
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
        AssertNothingLeft(network.B, options);
    }

    [RootFact]
    public void An_unknown_interface_is_refused_by_name_and_leaves_nothing()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B, TestNetwork.Interface, "nosuch0");
        var e = Assert.Throws<TcpFreezeException>(() => TcpFreezer.Attach(options));
        Assert.Contains("'nosuch0'", e.Message);
        Assert.Contains("veth0", e.Message); // lists what exists
        AssertNothingLeft(network.B, options);
    }

    [RootFact]
    public void A_pin_root_outside_bpffs_is_refused_with_a_folder_under_bpffs_to_use_instead()
    {
        string root = Directory.CreateTempSubdirectory("tcpfreeze-not-bpffs-").FullName;
        try
        {
            var e = Assert.Throws<TcpFreezeException>(() => TcpFreezer.Attach(new FreezerOptions { PinRoot = Path.Combine(root, "pins") }));
            Assert.Contains("not on a bpf filesystem", e.Message);
            // Mounting bpffs over the folder given (or its parent, /tmp) would hide what is there.
            Assert.Contains($"choose a folder under a bpffs mount, e.g. {BpfFs.DefaultMountPoint}/pins", e.Message);
            Assert.DoesNotContain("mount -t bpf", e.Message);
            Assert.False(Directory.Exists(Path.Combine(root, "pins")));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [RootFact]
    public void Opening_a_namespace_that_was_never_attached_says_to_attach_first()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        var e = Assert.Throws<TcpFreezeException>(() => TcpFreezer.Open(pins.Options(network.A)));
        Assert.Equal(TcpFreezeRemedy.Attach, e.Remedy);
    }

    [RootFact]
    public void A_namespace_path_that_does_not_exist_is_refused()
    {
        using var pins = new PinRoot();
        var e = Assert.ThrowsAny<Exception>(() => TcpFreezer.Attach(pins.Options(NetworkNamespace.Named("tcpfreeze-no-such-namespace"))));
        Assert.Contains("does not exist", e.Message);
    }

    [RootFact]
    public void Concurrent_freezers_in_one_namespace_do_not_lose_each_others_entries()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B);
        try
        {
            TcpFreezer.Attach(options).Dispose();
            Parallel.For(0, 4, worker =>
            {
                using TcpFreezer freezer = TcpFreezer.Open(options);
                for (int round = 0; round < 25; round++)
                {
                    ConnectionKey[] mine = Enumerable.Range(0, 8).Select(i => Key(worker * 1000 + round * 10 + i)).ToArray();
                    freezer.Freeze(mine);
                    if (round % 2 == 1)
                        Assert.Equal(8, freezer.Thaw(mine).ConnectionsThawed);
                }
            });
            using TcpFreezer check = TcpFreezer.Open(options);
            Assert.Equal(4 * 13 * 8, check.ListConnections().Count); // rounds 0,2,...,24 stay frozen
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }

    [RootFact]
    public void Pins_and_their_directories_are_for_root_only()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B);
        try
        {
            using TcpFreezer freezer = TcpFreezer.Attach(options);
            UnixFileMode others = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
                                  | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
            Assert.Equal(UnixFileMode.None, File.GetUnixFileMode(freezer.PinDirectory) & others);
            string[] pinned = Directory.GetFiles(freezer.PinDirectory);
            Assert.Equal(KernelObjects.PinNames.Length, pinned.Length);
            foreach (string pin in pinned)
            {
                Assert.Equal(UnixFileMode.None, File.GetUnixFileMode(pin) & others);
                Assert.Equal("0", Run.Checked("stat", "-c", "%u", pin).Trim());
            }
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }

    [RootFact]
    public void Tc_ingress_puts_no_xdp_program_anywhere_and_detach_removes_its_filters_and_pins()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B) with { IngressHook = IngressHook.Tc };
        using (TcpFreezer freezer = TcpFreezer.Attach(options))
        {
            Assert.All(freezer.AttachedInterfaces, i => Assert.Equal(IngressHook.Tc, i.IngressHook));
            Assert.Contains(freezer.AttachedInterfaces, i => i.Name == "lo");
            freezer.Freeze([Key(1)]);
        }
        Assert.All(XdpProgramIds(network.B), id => Assert.Equal(0u, id));
        Assert.Contains("tf_tc_ingress", Run.Checked("tc", "-n", network.NameB, "filter", "show", "dev", TestNetwork.Interface, "ingress"));
        Assert.Contains("tf_tc_egress", Run.Checked("tc", "-n", network.NameB, "filter", "show", "dev", TestNetwork.Interface, "egress"));

        DetachResult result = TcpFreezer.Detach(options);
        Assert.Contains(TestNetwork.Interface, result.Interfaces);
        Assert.Equal(KernelObjects.PinNames.Length, result.PinsRemoved);
        AssertNothingLeft(network.B, options);
    }

    [RootFact]
    public void Attaching_with_the_other_ingress_hook_moves_the_ingress_program_and_keeps_the_frozen_set()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions xdp = pins.Options(network.B, TestNetwork.Interface), tc = xdp with { IngressHook = IngressHook.Tc };
        try
        {
            using (TcpFreezer first = TcpFreezer.Attach(xdp))
                first.Freeze([Key(1)]);
            Assert.NotEqual(0u, ForeignXdpProgram.AttachedId(network.B, TestNetwork.Interface));

            using (TcpFreezer moved = TcpFreezer.Attach(tc))
            {
                AttachedInterface nic = Assert.Single(moved.AttachedInterfaces);
                Assert.True(nic.Created);
                Assert.Equal(IngressHook.Tc, nic.IngressHook);
                Assert.Equal(Key(1), Assert.Single(moved.ListConnections()).Key);
            }
            Assert.Equal(0u, ForeignXdpProgram.AttachedId(network.B, TestNetwork.Interface));
            Assert.NotEqual(0u, TcIngressId(network.B));

            using (TcpFreezer again = TcpFreezer.Attach(tc))
                Assert.False(Assert.Single(again.AttachedInterfaces).Created);

            using (TcpFreezer back = TcpFreezer.Attach(xdp))
            {
                Assert.True(Assert.Single(back.AttachedInterfaces).Created);
                Assert.Equal(Key(1), Assert.Single(back.ListConnections()).Key);
            }
            Assert.NotEqual(0u, ForeignXdpProgram.AttachedId(network.B, TestNetwork.Interface));
            Assert.Equal(0u, TcIngressId(network.B));
        }
        finally
        {
            TcpFreezer.Detach(xdp);
        }
        AssertNothingLeft(network.B, xdp);
    }

    [RootFact]
    public void Moving_back_to_xdp_over_a_foreign_xdp_program_is_refused_and_keeps_the_tc_ingress()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions tc = pins.Options(network.B, TestNetwork.Interface) with { IngressHook = IngressHook.Tc };
        using ForeignXdpProgram foreign = ForeignXdpProgram.Pass();
        foreign.AttachTo(network.B, TestNetwork.Interface);
        try
        {
            TcpFreezer.Attach(tc).Dispose();
            uint ingress = TcIngressId(network.B);
            Assert.NotEqual(0u, ingress);

            var e = Assert.Throws<TcpFreezeException>(() => TcpFreezer.Attach(tc with { IngressHook = IngressHook.Xdp }));
            Assert.Contains("refusing to replace", e.Message);
            Assert.Equal(foreign.Id, ForeignXdpProgram.AttachedId(network.B, TestNetwork.Interface));
            Assert.Equal(ingress, TcIngressId(network.B));
        }
        finally
        {
            TcpFreezer.Detach(tc);
        }
        Assert.Equal(foreign.Id, ForeignXdpProgram.AttachedId(network.B, TestNetwork.Interface));
        AssertNothingLeft(network.B, tc);
    }

    [RootFact]
    public void A_tc_ingress_attach_refused_on_a_later_interface_rolls_back_the_earlier_ones()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B, "lo", TestNetwork.Interface) with { IngressHook = IngressHook.Tc };
        // mov r0, TC_ACT_OK; exit: another tool's filter at TcpFreeze's own ingress handle and priority.
        using BpfProgram foreignTc = BpfProgram.Load(BpfProgramType.SchedCls, "foreign_tc", [0x0000_0000_0000_00b7UL, 0x95UL]);
        network.B.Run(() => Tc.Attach(foreignTc, NetworkInterfaceNames.GetIndex(TestNetwork.Interface), TcDirection.Ingress, BpfNames.TcHandle, BpfNames.TcPriority));

        var e = Assert.Throws<TcpFreezeException>(() => TcpFreezer.Attach(options));
        Assert.Equal(Errnos.EEXIST, e.Errno);
        Assert.Contains("foreign_tc", e.Message);
        Assert.Equal(foreignTc.Info.Id, TcIngressId(network.B));
        AssertNothingLeft(network.B, options);
    }

    [RootFact]
    public void Detach_removes_a_tc_ingress_filter_whose_pins_are_gone()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B) with { IngressHook = IngressHook.Tc };
        string directory;
        using (TcpFreezer freezer = TcpFreezer.Attach(options))
            directory = freezer.PinDirectory;
        foreach (string pin in Directory.GetFiles(directory))
            File.Delete(pin);
        Assert.NotEqual(0u, TcIngressId(network.B));

        DetachResult result = TcpFreezer.Detach(options);
        Assert.Contains(TestNetwork.Interface, result.Interfaces);
        AssertNothingLeft(network.B, options);
    }

    private static uint TcIngressId(NetworkNamespace ns)
        => ns.Run(() => Tc.Query(NetworkInterfaceNames.GetIndex(TestNetwork.Interface), TcDirection.Ingress, BpfNames.TcHandle, BpfNames.TcPriority));

    private static List<uint> XdpProgramIds(NetworkNamespace ns)
        => ns.Run(() => NetworkInterfaceInfo.List().Select(nic => Xdp.Query(nic.Index).ProgramId).ToList());
}
