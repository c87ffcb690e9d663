using TcpFreeze.Ebpf.Interop;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// Pins made by a TcpFreeze version with another map value layout (the resume-kick fields made
/// struct tf_entry 40 bytes; it was 16) are refused cleanly, never read with the wrong layout.
/// </summary>
[Trait("Privileges", "root")]
public sealed class PinnedLayoutTests
{
    [RootFact]
    public void A_connections_map_pinned_by_a_version_with_another_value_layout_is_refused_with_what_to_run()
    {
        using var network = TestNetwork.Create();
        using var pins = new PinRoot();
        FreezerOptions options = pins.Options(network.A);
        try
        {
            using (TcpFreezer.Attach(options))
            {
            }
            // Its connections map as the previous version made it: 40-byte keys, 16-byte values.
            string pin = Path.Combine(TcpFreezer.GetPinDirectory(options), "connections");
            File.Delete(pin);
            using (BpfMap old = BpfMap.Create(BpfMapType.Hash, "tf_connections", ConnectionKey.Size, 16, 1024))
                old.Pin(pin);

            var refused = Assert.Throws<TcpFreezeException>(() => TcpFreezer.Open(options));
            Assert.Contains("16-byte values", refused.Message);
            Assert.Contains("incompatible TcpFreeze version", refused.Message);
            Assert.Equal(TcpFreezeRemedy.RemoveIncompatible, refused.Remedy);
            // The CLI says what to run.
            CliResult cli = TcpFreezeCommand.Run(["--pin-root", pins.Path, "--netns", $"/run/netns/{network.NameA}", "list"]);
            Assert.Equal(1, cli.ExitCode);
            Assert.Contains("tcpfreeze detach", cli.Error);
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }
}
