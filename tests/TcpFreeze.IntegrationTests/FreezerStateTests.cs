using System.Net;
using System.Net.Sockets;
using System.Text;
using TcpFreeze.Ebpf.Interop;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// Issue 12, items 3, 4 and 6: pin roots isolated inside one namespace, a freeze enforced on
/// every interface, and state nobody cleaned up (expired entries, a deleted namespace's pins,
/// a batch that does not fit). Real kernel, namespaces and pin roots of the test's own.
/// </summary>
[Trait("Privileges", "root")]
public sealed class FreezerStateTests
{
    private static ConnectionKey Key(int i) => ConnectionKey.Parse($"198.18.0.1:{1000 + i}", "198.18.0.2:5000");

    private static uint XdpId(NetworkNamespace ns, string nic) => ns.Run(() => Xdp.Query(NetworkInterfaceNames.GetIndex(nic)).ProgramId);

    private static void AssertSilent(TcpPair pair, string when)
    {
        pair.Client.Send(Encoding.ASCII.GetBytes("ping\n"));
        Assert.False(TcpPair.Readable(pair.Server, TimeSpan.FromSeconds(1)), $"a byte reached the frozen server {when}");
    }

    // ------------------------------------------------------------------ item 6

    [RootFact]
    public void Expired_entries_stop_counting_and_the_next_freeze_removes_them_instead_of_failing_full()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B) with { MaxConnections = 4 };
        try
        {
            using TcpFreezer freezer = TcpFreezer.Attach(options);
            freezer.Freeze(Enumerable.Range(0, 4).Select(Key), lease: TimeSpan.FromMilliseconds(200));
            Thread.Sleep(400);

            FreezerStatistics stats = freezer.GetStatistics();
            Assert.Equal(0, stats.FrozenConnections);
            Assert.Equal(4, stats.ExpiredConnections);
            string shown = TcpFreezeCommand.Run("--pin-root", pins.Path, "--netns", $"/run/netns/{network.NameB}", "stats").Succeeds().Output;
            Assert.Contains("frozen connections:   0 of 4", shown);
            Assert.Contains("expired entries:      4 connections", shown);
            string listed = TcpFreezeCommand.Run("--pin-root", pins.Path, "--netns", $"/run/netns/{network.NameB}", "list").Succeeds().Output;
            Assert.Contains("nothing is frozen", listed);
            Assert.Contains("expired connection", listed);

            FreezeResult result = freezer.Freeze(Enumerable.Range(10, 4).Select(Key), lease: TimeSpan.FromMinutes(1));
            Assert.Equal(4, result.ConnectionsFrozen);
            Assert.Equal(4, result.ExpiredRemoved);
            Assert.Equal(Enumerable.Range(10, 4).Select(Key).ToHashSet(), freezer.ListConnections().Select(c => c.Key).ToHashSet());
            Assert.Equal(0, freezer.GetStatistics().ExpiredConnections);
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }

    [RootFact]
    public void A_batch_that_does_not_fit_is_refused_before_any_of_it_is_written()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B) with { MaxConnections = 65_536 };
        try
        {
            using TcpFreezer freezer = TcpFreezer.Attach(options);
            freezer.Freeze(Enumerable.Range(0, 10).Select(Key));
            ConnectionKey[] tooMany = Enumerable.Range(0, 100_000)
                .Select(i => ConnectionKey.Parse($"198.18.{1 + i / 60000}.{1 + i % 200}:{1024 + i % 60000}", "198.18.0.2:5000")).Distinct().ToArray();
            Assert.True(tooMany.Length > 65_536);

            // Watch the map from another descriptor the whole time the refused freeze runs.
            using BpfMap watched = BpfMap.OpenPinned(Path.Combine(freezer.PinDirectory, KernelObjects.Connections.PinName));
            var view = watched.As<ConnectionKey, FreezeEntry>();
            int most = 0;
            using var stop = new CancellationTokenSource();
            var watcher = Task.Run(() =>
            {
                while (!stop.IsCancellationRequested)
                    most = Math.Max(most, view.LookupAll().Count);
            });
            var e = Assert.Throws<TcpFreezeException>(() => freezer.Freeze(tooMany));
            Thread.Sleep(50);
            stop.Cancel();
            watcher.Wait();
            Assert.Contains("full", e.Message);
            Assert.Contains("nothing was frozen", e.Message);
            Assert.Equal(10, most);
            Assert.Equal(10, freezer.ListConnections().Count);
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }

    [RootFact]
    public void Gc_removes_the_pins_of_a_deleted_namespace_and_keeps_those_of_live_ones()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        string doomed = $"tfz{Environment.ProcessId}gc";
        Run.Checked("ip", "netns", "add", doomed);
        try
        {
            Run.Checked("ip", "-n", doomed, "link", "set", "lo", "up");
            TcpFreezeCommand.Run("--pin-root", pins.Path, "--netns", $"/run/netns/{doomed}", "attach").Succeeds();
            TcpFreezeCommand.Run("--pin-root", pins.Path, "--netns", $"/run/netns/{network.NameB}", "attach").Succeeds();
            string[] before = Directory.GetDirectories(pins.Path);
            Assert.Equal(2, before.Length);
            string nothing = TcpFreezeCommand.Run("--pin-root", pins.Path, "gc").Succeeds().Output;
            Assert.Contains("nothing to remove", nothing);
        }
        finally
        {
            Run.Capture("ip", "netns", "del", doomed);
        }
        string live = TcpFreezer.GetPinDirectory(pins.Options(network.B));
        string dead = Assert.Single(Directory.GetDirectories(pins.Path), d => d != live);

        string output = TcpFreezeCommand.Run("--pin-root", pins.Path, "gc").Succeeds().Output;
        Assert.Contains($"removed {dead}", output);
        Assert.False(Directory.Exists(dead), "the dead namespace's pin directory is still there");
        Assert.Equal(KernelObjects.PinNames.Length, Directory.GetFiles(live).Length);
        TcpFreezer.Detach(pins.Options(network.B));
    }

    // ------------------------------------------------------------------ item 4

    [RootFact]
    public void After_an_interrupted_attach_a_freeze_attaches_the_missing_interfaces_and_holds()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        using var pair = TcpPair.Open(network.A, network.B, new IPEndPoint(network.AddressB(AddressFamily.InterNetwork), 8090));
        FreezerOptions options = pins.Options(network.B);
        try
        {
            // What an attach interrupted after lo leaves: programs and pins, lo attached, veth0 not.
            TcpFreezer.Attach(options with { Interfaces = ["lo"] }).Dispose();
            Assert.Equal(0u, XdpId(network.B, TestNetwork.Interface));

            using TcpFreezer freezer = TcpFreezer.Open(options);
            FreezeResult result = freezer.Freeze([pair.ServerView]);
            Assert.Equal([TestNetwork.Interface], result.InterfacesAttached);
            Assert.NotEqual(0u, XdpId(network.B, TestNetwork.Interface));
            AssertSilent(pair, "after a freeze that followed an interrupted attach");
            Assert.True(freezer.GetStatistics().DroppedIngress > 0);
            freezer.Thaw([pair.ServerView]);
            Assert.Equal("ping\n", Encoding.ASCII.GetString(TcpPair.ReadExactly(pair.Server, 5, TimeSpan.FromSeconds(20))));
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }

    [RootFact]
    public void An_interface_added_after_attach_is_covered_by_the_next_freeze_and_one_that_cannot_be_is_named()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.B);
        using ForeignXdpProgram foreign = ForeignXdpProgram.Pass();
        try
        {
            TcpFreezer.Attach(options).Dispose();
            Run.Checked("ip", "link", "add", "veth1", "netns", network.NameA, "type", "veth", "peer", "name", "veth1", "netns", network.NameB);
            foreach (string ns in new[] { network.NameA, network.NameB })
                Run.Checked("ip", "-n", ns, "link", "set", "veth1", "up");

            using TcpFreezer freezer = TcpFreezer.Open(options);
            Assert.Equal(["veth1"], freezer.Freeze([Key(1)]).InterfacesAttached);
            Assert.NotEqual(0u, XdpId(network.B, "veth1"));

            // An interface that cannot be covered (another tool's XDP program) refuses the freeze, by name.
            Run.Checked("ip", "link", "add", "veth2", "netns", network.NameA, "type", "veth", "peer", "name", "veth2", "netns", network.NameB);
            foreach (string ns in new[] { network.NameA, network.NameB })
                Run.Checked("ip", "-n", ns, "link", "set", "veth2", "up");
            foreign.AttachTo(network.B, "veth2");
            var e = Assert.Throws<TcpFreezeException>(() => freezer.Freeze([Key(2)]));
            Assert.Contains("veth2", e.Message);
            Assert.Contains("nothing was frozen", e.Message);
            Assert.DoesNotContain(freezer.ListConnections(), c => c.Key == Key(2));
            Assert.Equal(foreign.Id, XdpId(network.B, "veth2"));
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }

    // ------------------------------------------------------------------ item 3

    [RootFact]
    public void Another_pin_root_neither_replaces_nor_detaches_this_one_s_programs_and_orphans_are_still_removed()
    {
        using var network = TestNetwork.Create();
        using var pinsA = new PinRoot();
        using var pinsB = new PinRoot();
        using var pinsC = new PinRoot();
        using var pair = TcpPair.Open(network.A, network.B, new IPEndPoint(network.AddressB(AddressFamily.InterNetwork), 8091));
        FreezerOptions a = pinsA.Options(network.B), b = pinsB.Options(network.B), c = pinsC.Options(network.B);
        try
        {
            using (TcpFreezer freezer = TcpFreezer.Attach(a))
                freezer.Freeze([pair.ServerView], lease: TimeSpan.FromMinutes(1));
            uint programA = XdpId(network.B, TestNetwork.Interface);

            var refused = Assert.Throws<TcpFreezeException>(() => TcpFreezer.Attach(b));
            Assert.Contains(pinsA.Path, refused.Message);
            Assert.Contains("another pin root", refused.Message);
            Assert.Equal(programA, XdpId(network.B, TestNetwork.Interface));
            Assert.False(Directory.Exists(TcpFreezer.GetPinDirectory(b)) && Directory.EnumerateFileSystemEntries(TcpFreezer.GetPinDirectory(b)).Any(),
                "the refused attach left pins");

            DetachResult other = TcpFreezer.Detach(c);
            Assert.Empty(other.Interfaces);
            Assert.Empty(TcpFreezer.Inspect(c).Programs);
            Assert.Equal(programA, XdpId(network.B, TestNetwork.Interface));
            AssertSilent(pair, "after another pin root's attach and detach");

            // With A's pins gone, its programs are orphans: any pin root's detach removes them.
            foreach (string pin in Directory.GetFiles(TcpFreezer.GetPinDirectory(a)))
                File.Delete(pin);
            Assert.Contains(TestNetwork.Interface, TcpFreezer.Detach(c).Interfaces);
            Assert.Equal(0u, XdpId(network.B, TestNetwork.Interface));
        }
        finally
        {
            TcpFreezer.Detach(a);
            TcpFreezer.Detach(b);
            TcpFreezer.Detach(c);
        }
    }
}
