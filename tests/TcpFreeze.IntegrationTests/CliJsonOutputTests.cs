using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// The command's output contract against the kernel: the JSON of list and stats as docs/cli-json.md and its schema
/// files say (every field, no other, the types and the version), under every spelling of the format flag, with
/// directions named receive and transmit; options a command does not use are refused, those it lists are honoured.
/// </summary>
[Trait("Privileges", "root")]
public sealed class CliJsonOutputTests : IDisposable
{
    private readonly TestNetwork _network = TestNetwork.Create("tfb");
    private readonly PinRoot _pins = new("tfb-json-");

    private CliResult Cli(params string[] arguments) => TcpFreezeCommand.Run(["--pin-root", _pins.Path, "--netns", _network.NameB, .. arguments]);

    [RootFact]
    public void List_and_stats_write_the_documented_schema_under_every_spelling_of_the_format_flag()
    {
        using var pair = TcpPair.Open(_network.A, _network.B, new IPEndPoint(_network.AddressB(AddressFamily.InterNetwork), 8080));
        using var v6 = TcpPair.Open(_network.A, _network.B, new IPEndPoint(_network.AddressB(AddressFamily.InterNetworkV6), 8443));
        using (TcpFreezer freezer = TcpFreezer.Attach(_pins.Options(_network.B)))
        {
            // One connection without a lease (leaseSeconds null), one with (a number), and an endpoint.
            freezer.Freeze([pair.ServerView], lease: Lease.Forever);
            freezer.Freeze([v6.ServerView], [EndpointKey.Parse("0.0.0.0:8080")], lease: TimeSpan.FromSeconds(90));
            pair.Client.Send("held"u8);
            pair.Server.Send("held"u8);
            var waited = System.Diagnostics.Stopwatch.StartNew();
            while ((freezer.GetStatistics().DroppedIngress == 0 || freezer.GetStatistics().DroppedEgress == 0) && waited.Elapsed < TimeSpan.FromSeconds(10))
                Thread.Sleep(20);
        }

        foreach (string[] spelling in new[] { new[] { "--format", "json" }, ["-o", "json"], ["-j"], ["--json"] })
        {
            JsonElement list = Cli(["list", .. spelling]).Succeeds().Json();
            DocumentedJson.AssertMatches(list, "tcpfreeze-list.schema.json");
            Assert.Equal(2, list.GetProperty("connections").GetArrayLength());
            Assert.Single(list.GetProperty("endpoints").EnumerateArray());
            JsonElement stats = Cli(["stats", .. spelling]).Succeeds().Json();
            DocumentedJson.AssertMatches(stats, "tcpfreeze-stats.schema.json");
        }

        JsonElement listed = Cli("list", "-j").Succeeds().Json();
        JsonElement held = listed.GetProperty("connections").EnumerateArray().Single(c => c.GetProperty("local").GetString() == TcpEndpointText.Format(pair.ServerView.Local));
        Assert.Equal(JsonValueKind.Null, held.GetProperty("leaseSeconds").ValueKind);
        Assert.True(held.GetProperty("dataSegmentsDropped").GetProperty("receive").GetUInt64() > 0, held.ToString());
        Assert.True(held.GetProperty("dataSegmentsDropped").GetProperty("transmit").GetUInt64() > 0, held.ToString());
        JsonElement leased = listed.GetProperty("connections").EnumerateArray().Single(c => c.GetProperty("local").GetString() == TcpEndpointText.Format(v6.ServerView.Local));
        Assert.InRange(leased.GetProperty("leaseSeconds").GetDouble(), 1, 90);

        JsonElement counted = Cli("stats", "--format", "json").Succeeds().Json();
        Assert.True(counted.GetProperty("dropped").GetProperty("receive").GetUInt64() > 0, counted.ToString());
        Assert.True(counted.GetProperty("dropped").GetProperty("transmit").GetUInt64() > 0, counted.ToString());
        Assert.Equal(2, counted.GetProperty("frozenConnections").GetInt32());

        string text = Cli("stats").Succeeds().Output;
        Assert.Contains("dropped, receive:", text);
        Assert.Contains("dropped, transmit:", text);
        Assert.Contains("data-dropped=receive:", Cli("list", "--format", "text").Succeeds().Output);
    }

    [RootFact]
    public void Gc_takes_the_pin_root_from_the_hook_settings_and_its_wait_and_refuses_netns_which_it_cannot_use()
    {
        using var folder = new TempDirectory();
        string settings = folder.Write("criu-hook.conf", $"pin-root = {_pins.Path}\n");
        CliResult gc = TcpFreezeCommand.Run("--hook-settings", settings, "gc", "--wait", "1").Succeeds();
        Assert.Contains($"every pin directory under {_pins.Path} belongs to a namespace that still exists", gc.Output);

        // --wait reaches gc: with the pin root's lock held here, it gives up after 0.3 s naming this process.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using (PinLock.Acquire(_pins.Path, TimeSpan.FromSeconds(1)))
            Assert.Contains($"process {Environment.ProcessId}", TcpFreezeCommand.Run("--hook-settings", settings, "gc", "--wait", "0.3")
                .FailsWith(1, $"has held the lock on {_pins.Path} for more than 0.3 s").Error);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4.5), $"gc waited {clock.Elapsed}, as if --wait were the default 5 s");

        TcpFreezeCommand.Run("--netns", _network.NameB, "gc").FailsWith(2, "gc does not use --netns");
        TcpFreezeCommand.Run("--netns", _network.NameB, "criu-config").FailsWith(2, "criu-config does not use --netns");
    }

    public void Dispose()
    {
        try
        {
            TcpFreezer.Detach(_pins.Options(_network.B));
        }
        finally
        {
            _pins.Dispose();
            _network.Dispose();
        }
    }
}
