using System.Net;
using System.Text;
using CsCheck;
using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// The manifest reader under hostile bytes: random bytes, valid manifests with random
/// byte edits, and manifests whose fields hold JSON of the wrong kind. It either returns
/// a manifest whose every connection and endpoint parses, or throws an
/// <see cref="InvalidDataException"/> with a message; nothing else, and it never hangs.
/// </summary>
public sealed class FreezeManifestPropertyTests : IDisposable
{
    private const long Iterations = 3_000;
    private readonly TempDirectory _directory = new();

    private static readonly Gen<byte[]> ValidManifest = Gen.Select(
        Gen.Int[1, 1 << 22], Gen.Int[1, 86_400], Gen.Int[0, 3], Gen.Int[0, 2],
        (pid, lease, connections, endpoints) =>
        {
            var manifest = FreezeManifest.Create(pid, TimeSpan.FromSeconds(lease),
                Enumerable.Range(1, connections).Select(i => i % 2 == 0
                    ? ConnectionKey.Parse($"[2001:db8::1]:{8000 + i}", "[2001:db8::2]:40000")
                    : ConnectionKey.Parse($"198.18.0.1:{8000 + i}", "198.18.0.2:40000")),
                Enumerable.Range(1, endpoints).Select(i => EndpointKey.Parse($"[2001:db8::1]:{9000 + i}")));
            // Some carry peer segments (short ones: byte edits should hit their base64 often).
            ConnectionKey[] keys = manifest.ConnectionKeys();
            if (keys.Length > 0 && pid % 2 == 0)
                manifest = manifest with
                {
                    PeerSegments = FreezeManifest.BoundedPeerSegments(keys, keys.ToDictionary(k => k,
                        k => new PeerSegment([.. Enumerable.Range(0, 4 + pid % 40).Select(i => (byte)(i + pid))], (uint)(44 + pid % 100)))),
                };
            using var temporary = new TempDirectory();
            manifest.Write(temporary.Path);
            return File.ReadAllBytes(temporary.File(FreezeManifest.FileName));
        });

    /// <summary>JSON values of every kind, including ones the reader must refuse.</summary>
    private static readonly Gen<string> JsonValue = Gen.OneOf(
        "null", "true", "0", "-1", "1", "2", "1e400", "-0.0", "99999999999999999999", "\"1\"", "\"\"", "\"198.18.0.1:80\"",
        "[]", "[null]", "[1]", "[\"198.18.0.1:80 198.18.0.2:9\"]", "[\"198.18.0.1:0 198.18.0.2:9\"]", "[\"[::1]:80 198.18.0.2:9\"]",
        "{}", "{\"version\":1}", new string('[', 300) + new string(']', 300), "\"\\ud800\"", "[\"\\u0000\"]");

    private static readonly Gen<string> SegmentsValue = Gen.OneOf(JsonValue, Gen.Select(JsonValue, JsonValue,
        (packet, length) => $"{{\"198.18.0.1:80 -> 198.18.0.2:9\":{{\"packet\":{packet},\"ipLength\":{length}}}}}"),
        Gen.OneOf("\"AAAA\"", "\"AAA\"", "\"=AAA\"", "\"\"", $"\"{new string('A', 2740)}\"").Select(packet =>
            $"{{\"198.18.0.1:80 -> 198.18.0.2:9\":{{\"packet\":{packet},\"ipLength\":60}}}}"));

    private static readonly Gen<byte[]> WrongKinds = Gen.Select(JsonValue, JsonValue, JsonValue, JsonValue, JsonValue, SegmentsValue,
        (version, pid, lease, connections, endpoints, segments) => Encoding.UTF8.GetBytes(
            $"{{\"version\":{version},\"initPid\":{pid},\"leaseSeconds\":{lease},\"connections\":{connections},\"endpoints\":{endpoints},\"peerSegments\":{segments}}}"));

    private static readonly Gen<byte[]> ByteEdits = Gen.Select(ValidManifest, Gen.Select(Gen.Int[0, 3], Gen.Int[0, 1 << 16], Gen.Byte).Array[1, 4],
        (bytes, edits) => edits.Aggregate(bytes, (current, edit) =>
        {
            int at = current.Length == 0 ? 0 : edit.Item2 % current.Length;
            return edit.Item1 switch
            {
                0 when current.Length > 0 => [.. current[..at], edit.Item3, .. current[(at + 1)..]],
                1 when current.Length > 0 => [.. current[..at], .. current[(at + 1)..]],
                2 => [.. current[..at], edit.Item3, .. current[at..]],
                _ => current[..at],
            };
        }));

    private static readonly Gen<byte[]> HostileManifest = Gen.Frequency(
        (1, Gen.Byte.Array[0, 200]),
        (1, HostileText.Text.Select(Encoding.UTF8.GetBytes)),
        (3, ByteEdits),
        (3, WrongKinds),
        (1, ValidManifest));

    [Fact]
    public void The_manifest_reader_returns_a_usable_manifest_or_says_why_it_cannot()
    {
        int accepted = 0, refused = 0;
        HostileText.Bounded(() => HostileManifest.Sample(bytes =>
        {
            File.WriteAllBytes(_directory.File(FreezeManifest.FileName), bytes);
            FreezeManifest manifest;
            try
            {
                manifest = FreezeManifest.Read(_directory.Path);
            }
            catch (InvalidDataException e)
            {
                Assert.False(string.IsNullOrWhiteSpace(e.Message));
                Assert.Contains(FreezeManifest.FileName, e.Message);
                refused++;
                return;
            }
            accepted++;
            Assert.Equal(FreezeManifest.CurrentVersion, manifest.Version);
            Assert.Equal(manifest.Connections.Count, manifest.ConnectionKeys().Length);
            Assert.Equal(manifest.Endpoints.Count, manifest.EndpointKeys().Length);
            Assert.All(manifest.PeerSegments ?? new Dictionary<string, PeerSegment>(), s =>
                Assert.True(s.Value.Packet.Length is > 0 and <= PeerSegment.MaxBytes && s.Value.IpLength >= s.Value.Packet.Length));
            Assert.True(manifest.PeerSegmentKeys().Count <= manifest.Connections.Count);
        }, iter: Iterations, threads: 1, print: bytes => Encoding.UTF8.GetString(bytes)));
        Assert.True(accepted > 50 && refused > 50, $"accepted {accepted}, refused {refused}: the generator lost its balance");
    }

    public void Dispose() => _directory.Dispose();
}

/// <summary>
/// CRIU's environment and the hook's settings file under hostile input: each parser
/// accepts and yields valid values, or throws a <see cref="FormatException"/> that says
/// what is wrong; nothing else, and never a hang.
/// </summary>
public sealed class CriuSettingsPropertyTests
{
    private const long Iterations = 20_000;
    private static readonly string[] ActionNames =
        ["pre-dump", "post-dump", "pre-restore", "setup-namespaces", "post-setup-namespaces", "post-restore", "pre-resume", "post-resume", "network-lock", "network-unlock"];

    private static readonly Gen<string?> Value = Gen.Frequency(
        (1, Gen.Const((string?)null)),
        (3, HostileText.Text.Select(t => (string?)t)),
        (2, HostileText.Mutated(Gen.OneOf(["1234", "/proc/42/fd/7", "2147483647", .. ActionNames])).Select(t => (string?)t)),
        (1, Gen.OneOf(ActionNames).Select(t => (string?)t)));

    private static readonly Gen<Dictionary<string, string?>> Environment = Gen.Select(
        Value, Value, Value, Gen.Select(HostileText.Text, Value).Array[0, 2],
        (action, images, pid, extra) =>
        {
            var environment = new Dictionary<string, string?>(StringComparer.Ordinal);
            foreach ((string name, string? value) in extra)
                environment[name] = value;
            environment["CRTOOLS_SCRIPT_ACTION"] = action;
            environment["CRTOOLS_IMAGE_DIR"] = images;
            environment["CRTOOLS_INIT_PID"] = pid;
            return environment;
        });

    private static readonly Gen<string> SettingsLine = Gen.Frequency(
        (1, HostileText.Text),
        (1, Gen.Double.Select(d => $"lease-seconds = {d.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}")),
        (4, HostileText.Mutated(Gen.OneOf(
            "lease-seconds = 120", "lease-seconds = 1e-9", "lease-seconds=0.5", "interfaces = eth0, lo", "pin-root = /sys/fs/bpf/tcpfreeze",
            "log-file = /var/log/tcpfreeze-hook.log", "keep-attached = true", "ingress = tc", "ingress = xdp", "# comment", "", "   "))));

    [Fact]
    public void The_criu_environment_parser_accepts_valid_values_or_throws_a_format_exception()
        => HostileText.Bounded(() => Environment.Sample(environment =>
        {
            CriuEnvironment parsed;
            try
            {
                parsed = CriuEnvironment.Parse(environment);
            }
            catch (FormatException e)
            {
                Assert.False(string.IsNullOrWhiteSpace(e.Message));
                Assert.Contains("CRTOOLS_", e.Message);
                return;
            }
            Assert.Equal(environment["CRTOOLS_SCRIPT_ACTION"], parsed.ActionName);
            Assert.Equal(ActionNames.Contains(parsed.ActionName), parsed.Action != CriuAction.Unknown);
            Assert.True(parsed.InitPid is null or > 0);
        }, iter: Iterations));

    [Fact]
    public void The_settings_parser_accepts_valid_settings_or_throws_a_format_exception_naming_the_line()
        => HostileText.Bounded(() => SettingsLine.Array[0, 6].Sample(lines =>
        {
            HookSettings settings;
            try
            {
                settings = HookSettings.Parse(lines, "/etc/tcpfreeze/criu-hook.conf");
            }
            catch (FormatException e)
            {
                Assert.StartsWith("/etc/tcpfreeze/criu-hook.conf:", e.Message, StringComparison.Ordinal);
                return;
            }
            Assert.InRange(settings.Lease, TimeSpan.FromMilliseconds(1), TimeSpan.FromDays(1));
            Assert.StartsWith("/", settings.PinRoot, StringComparison.Ordinal);
            Assert.True(settings.LogFile is null || settings.LogFile.StartsWith('/'));
            Assert.True(settings.Ingress is IngressHook.Xdp or IngressHook.Tc);
            Assert.True(settings.Interfaces is null || (settings.Interfaces.Count > 0 && settings.Interfaces.All(i => i.Length > 0 && !i.Contains(',') && !i.Contains(' '))));
        }, iter: Iterations));
}
