using System.Net;
using System.Text;
using Ebpf.Interop;
using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Infrastructure;

// Unit tests of the CRIU hook that need neither root nor CRIU: settings, manifest,
// dispatcher, the handlers' input checks and the executable's entry point.
namespace TcpFreeze.Tests.CriuHookUnit;

public sealed class HookSettingsTests
{
    private static HookSettings Parse(params string[] lines) => HookSettings.Parse(lines, "/etc/tcpfreeze/criu-hook.conf");

    private static string ParseError(params string[] lines) => Assert.Throws<FormatException>(() => Parse(lines)).Message;

    private static Func<string, string?> Environment(params (string Name, string? Value)[] variables)
    {
        Dictionary<string, string?> map = variables.ToDictionary(v => v.Name, v => v.Value);
        return name => map.GetValueOrDefault(name);
    }

    [Fact]
    public void Defaults_are_a_two_minute_lease_every_interface_the_default_pin_root_no_log_file_and_detaching()
    {
        var settings = new HookSettings();
        Assert.Equal(TimeSpan.FromSeconds(120), settings.Lease);
        Assert.Equal(HookSettings.DefaultLease, settings.Lease);
        Assert.Null(settings.Interfaces);
        Assert.Equal(FreezerOptions.DefaultPinRoot, settings.PinRoot);
        Assert.Null(settings.LogFile);
        Assert.False(settings.KeepAttached);
        Assert.Equal(IngressHook.Xdp, settings.Ingress);
        Assert.Null(settings.Source);
    }

    [Fact]
    public void An_empty_file_gives_the_defaults_and_records_its_source()
    {
        HookSettings settings = Parse();
        Assert.Equal(new HookSettings { Source = "/etc/tcpfreeze/criu-hook.conf" }, settings);
    }

    [Fact]
    public void Every_key_is_read()
    {
        HookSettings settings = Parse(
            "lease-seconds = 30.5",
            "interfaces = eth0, lo",
            "pin-root = /sys/fs/bpf/elsewhere",
            "log-file = /var/log/tcpfreeze-hook.log",
            "keep-attached = true",
            "ingress = tc");
        Assert.Equal(TimeSpan.FromSeconds(30.5), settings.Lease);
        Assert.Equal(["eth0", "lo"], settings.Interfaces);
        Assert.Equal("/sys/fs/bpf/elsewhere", settings.PinRoot);
        Assert.Equal("/var/log/tcpfreeze-hook.log", settings.LogFile);
        Assert.True(settings.KeepAttached);
        Assert.Equal(IngressHook.Tc, settings.Ingress);
    }

    [Theory]
    [InlineData("eth0,lo", new[] { "eth0", "lo" })]
    [InlineData("eth0 lo", new[] { "eth0", "lo" })]
    [InlineData(" veth-a ,  veth-b  ", new[] { "veth-a", "veth-b" })]
    [InlineData("lo", new[] { "lo" })]
    public void Interfaces_are_separated_by_commas_or_spaces(string value, string[] expected)
        => Assert.Equal(expected, Parse($"interfaces = {value}").Interfaces);

    [Fact]
    public void An_empty_interface_list_means_every_interface()
        => Assert.Null(Parse("interfaces =").Interfaces);

    [Theory]
    [InlineData("false", false)]
    [InlineData("true", true)]
    [InlineData("True", true)]
    [InlineData("FALSE", false)]
    public void Keep_attached_is_a_boolean(string value, bool expected)
        => Assert.Equal(expected, Parse($"keep-attached = {value}").KeepAttached);

    [Theory]
    [InlineData("0.001")]
    [InlineData("1")]
    [InlineData("86400")]
    [InlineData("1e2")]
    public void Leases_up_to_a_day_are_accepted(string value)
        => Assert.Equal(TimeSpan.FromSeconds(double.Parse(value, System.Globalization.CultureInfo.InvariantCulture)), Parse($"lease-seconds = {value}").Lease);

    [Fact]
    public void Comments_blank_lines_and_white_space_are_ignored()
    {
        HookSettings settings = Parse(
            "# TcpFreeze hook settings",
            "",
            "   ",
            "\tlease-seconds=45   # dump, copy and restore fit in this",
            "   # keep-attached = nonsense",
            "keep-attached = true#no space before the comment");
        Assert.Equal(TimeSpan.FromSeconds(45), settings.Lease);
        Assert.True(settings.KeepAttached);
    }

    [Fact]
    public void A_later_line_wins_over_an_earlier_one()
        => Assert.Equal(TimeSpan.FromSeconds(7), Parse("lease-seconds = 5", "lease-seconds = 7").Lease);

    [Fact]
    public void An_unknown_key_is_refused_with_file_line_and_the_known_keys()
    {
        string message = ParseError("lease-seconds = 5", "", "lease = 5");
        Assert.StartsWith("/etc/tcpfreeze/criu-hook.conf:3:", message);
        Assert.Contains("unknown setting 'lease'", message);
        Assert.Contains("lease-seconds, interfaces, pin-root, log-file, keep-attached, ingress", message);
    }

    [Theory]
    [InlineData("lease-seconds 5")]
    [InlineData("keep-attached")]
    [InlineData("= 5")]
    public void A_line_that_is_not_key_equals_value_is_refused_with_file_and_line(string line)
    {
        string message = ParseError("# first", line);
        Assert.StartsWith("/etc/tcpfreeze/criu-hook.conf:2:", message);
        Assert.Contains("is not 'key = value'", message);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-5")]
    [InlineData("NaN")]
    [InlineData("Infinity")]
    [InlineData("two minutes")]
    [InlineData("120s")]
    [InlineData("86400.5")]
    [InlineData("1e9")]
    [InlineData("1e-9")]
    [InlineData("0.0009")]
    [InlineData("")]
    public void A_bad_lease_is_refused_with_file_line_and_range(string value)
    {
        string message = ParseError("", $"lease-seconds = {value}");
        Assert.StartsWith("/etc/tcpfreeze/criu-hook.conf:2:", message);
        Assert.Contains(SettingSyntax.LeaseProblem(value)!, message);
        Assert.Contains($"'{value}'", message);
    }

    [Theory]
    [InlineData("pin-root", "sys/fs/bpf/tcpfreeze")]
    [InlineData("pin-root", "./pins")]
    [InlineData("pin-root", "")]
    [InlineData("log-file", "hook.log")]
    [InlineData("log-file", "~/hook.log")]
    public void A_relative_path_is_refused_with_file_and_line(string key, string value)
    {
        string message = ParseError($"{key} = {value}");
        Assert.StartsWith("/etc/tcpfreeze/criu-hook.conf:1:", message);
        Assert.Contains($"{key} must be an absolute path", message);
    }

    [Theory]
    [InlineData("yes")]
    [InlineData("1")]
    [InlineData("")]
    public void A_keep_attached_that_is_not_true_or_false_is_refused(string value)
    {
        string message = ParseError($"keep-attached = {value}");
        Assert.StartsWith("/etc/tcpfreeze/criu-hook.conf:1:", message);
        Assert.Contains("keep-attached must be true or false", message);
    }

    [Theory]
    [InlineData("xdp", IngressHook.Xdp)]
    [InlineData("tc", IngressHook.Tc)]
    public void Ingress_is_xdp_or_tc(string value, IngressHook expected)
        => Assert.Equal(expected, Parse($"ingress = {value}").Ingress);

    [Theory]
    [InlineData("TC")]
    [InlineData("tcx")]
    [InlineData("true")]
    [InlineData("")]
    public void An_ingress_that_is_not_xdp_or_tc_is_refused_with_file_line_and_the_values(string value)
    {
        string message = ParseError("# first", $"ingress = {value}");
        Assert.StartsWith("/etc/tcpfreeze/criu-hook.conf:2:", message);
        Assert.Contains("ingress must be xdp or tc", message);
        Assert.Contains($"'{value}'", message);
    }

    [Fact]
    public void The_freezer_options_carry_pin_root_interfaces_and_ingress_hook()
    {
        FreezerOptions options = Parse("pin-root = /sys/fs/bpf/x", "interfaces = lo", "ingress = tc").ToFreezerOptions();
        Assert.Equal("/sys/fs/bpf/x", options.PinRoot);
        Assert.Equal(["lo"], options.Interfaces);
        Assert.Equal(IngressHook.Tc, options.IngressHook);
    }

    [Fact]
    public void TCPFREEZE_INGRESS_beats_the_file_and_a_bad_value_names_the_variable()
    {
        using var folder = new TempDirectory();
        string path = folder.Write("hook.conf", "ingress = xdp\n");
        Assert.Equal(IngressHook.Tc, HookSettings.Load(Environment(("TCPFREEZE_HOOK_CONFIG", path), ("TCPFREEZE_INGRESS", "tc"))).Ingress);
        Assert.Equal(IngressHook.Xdp, HookSettings.Load(Environment(("TCPFREEZE_HOOK_CONFIG", path), ("TCPFREEZE_INGRESS", ""))).Ingress);
        var e = Assert.Throws<FormatException>(() => HookSettings.Load(Environment(("TCPFREEZE_HOOK_CONFIG", path), ("TCPFREEZE_INGRESS", "bpf"))));
        Assert.StartsWith("TCPFREEZE_INGRESS must be xdp or tc", e.Message);
        Assert.Contains("'bpf'", e.Message);
    }

    [Fact]
    public void Load_reads_the_file_named_by_TCPFREEZE_HOOK_CONFIG()
    {
        using var folder = new TempDirectory();
        string path = folder.Write("hook.conf", "lease-seconds = 60\ninterfaces = lo\nkeep-attached = true\n");
        HookSettings settings = HookSettings.Load(Environment(("TCPFREEZE_HOOK_CONFIG", path)));
        Assert.Equal(path, settings.Source);
        Assert.Equal(TimeSpan.FromSeconds(60), settings.Lease);
        Assert.Equal(["lo"], settings.Interfaces);
        Assert.True(settings.KeepAttached);
    }

    [Fact]
    public void Environment_variables_beat_the_file()
    {
        using var folder = new TempDirectory();
        string path = folder.Write("hook.conf",
            "lease-seconds = 60\ninterfaces = lo\npin-root = /sys/fs/bpf/file\nlog-file = /var/log/file.log\nkeep-attached = true\n");
        HookSettings settings = HookSettings.Load(Environment(
            ("TCPFREEZE_HOOK_CONFIG", path),
            ("TCPFREEZE_LEASE_SECONDS", "9"),
            ("TCPFREEZE_INTERFACES", "veth0,veth1"),
            ("TCPFREEZE_PIN_ROOT", "/sys/fs/bpf/env"),
            ("TCPFREEZE_LOG_FILE", "/tmp/env.log")));
        Assert.Equal(TimeSpan.FromSeconds(9), settings.Lease);
        Assert.Equal(["veth0", "veth1"], settings.Interfaces);
        Assert.Equal("/sys/fs/bpf/env", settings.PinRoot);
        Assert.Equal("/tmp/env.log", settings.LogFile);
        Assert.True(settings.KeepAttached); // no variable for it: the file's value stays
        Assert.Equal(path, settings.Source);
    }

    [Fact]
    public void Empty_environment_variables_do_not_override()
    {
        using var folder = new TempDirectory();
        string path = folder.Write("hook.conf", "lease-seconds = 60\n");
        HookSettings settings = HookSettings.Load(Environment(("TCPFREEZE_HOOK_CONFIG", path), ("TCPFREEZE_LEASE_SECONDS", ""), ("TCPFREEZE_PIN_ROOT", "")));
        Assert.Equal(TimeSpan.FromSeconds(60), settings.Lease);
        Assert.Equal(FreezerOptions.DefaultPinRoot, settings.PinRoot);
    }

    [Theory]
    [InlineData("TCPFREEZE_LEASE_SECONDS", "0", "at least 0.001 s")]
    [InlineData("TCPFREEZE_LEASE_SECONDS", "soon", "86400")]
    [InlineData("TCPFREEZE_PIN_ROOT", "pins", "absolute path")]
    [InlineData("TCPFREEZE_LOG_FILE", "hook.log", "absolute path")]
    public void A_bad_environment_variable_is_refused_by_name(string name, string value, string reason)
    {
        using var folder = new TempDirectory();
        string path = folder.Write("hook.conf", "");
        string message = Assert.Throws<FormatException>(() => HookSettings.Load(Environment(("TCPFREEZE_HOOK_CONFIG", path), (name, value)))).Message;
        Assert.StartsWith(name, message);
        Assert.Contains(reason, message);
    }

    [Fact]
    public void A_file_error_names_the_file_and_line_through_Load()
    {
        using var folder = new TempDirectory();
        string path = folder.Write("hook.conf", "# settings\nlease-seconds = 5\nfrobnicate = 1\n");
        string message = Assert.Throws<FormatException>(() => HookSettings.Load(Environment(("TCPFREEZE_HOOK_CONFIG", path)))).Message;
        Assert.StartsWith($"{path}:3:", message);
    }

    [Fact]
    public void TCPFREEZE_HOOK_CONFIG_naming_a_missing_file_is_an_error()
    {
        using var folder = new TempDirectory();
        string missing = folder.File("missing.conf");
        string message = Assert.Throws<FormatException>(() => HookSettings.Load(Environment(("TCPFREEZE_HOOK_CONFIG", missing)))).Message;
        Assert.Contains("TCPFREEZE_HOOK_CONFIG", message);
        Assert.Contains(missing, message);
    }

    [Fact]
    public void A_missing_default_file_gives_the_defaults()
    {
        // The default path is a constant and tests do not write to /etc: where someone
        // installed a settings file, there is nothing to check here.
        if (File.Exists(HookSettings.DefaultConfigPath))
            return;
        HookSettings settings = HookSettings.Load(Environment(("TCPFREEZE_LEASE_SECONDS", "5")));
        Assert.Equal(new HookSettings { Lease = TimeSpan.FromSeconds(5) }, settings);
    }
}

public sealed class FreezeManifestTests : IDisposable
{
    private readonly TempDirectory _images = new();

    public void Dispose() => _images.Dispose();

    private static readonly ConnectionKey V4 = ConnectionKey.Parse("198.18.0.1:8080 -> 198.18.0.2:40000");
    private static readonly ConnectionKey V6 = ConnectionKey.Parse("[2001:db8::1]:443 -> [2001:db8::2]:51000");
    private static readonly EndpointKey ListenerV4 = EndpointKey.Parse("0.0.0.0:8080");
    private static readonly EndpointKey ListenerV6 = EndpointKey.Parse("[2001:db8::1]:443");

    private string ManifestPath => _images.File(FreezeManifest.FileName);

    private string ReadError(string json)
    {
        File.WriteAllText(ManifestPath, json);
        return Assert.Throws<InvalidDataException>(() => FreezeManifest.Read(_images.Path)).Message;
    }

    private static string Json(string connections = """["198.18.0.1:8080 -> 198.18.0.2:40000"]""", string endpoints = """["0.0.0.0:8080"]""", int version = 1, string extra = "")
        => $$"""{ "version": {{version}}, "createdUtc": "2026-01-01T00:00:00.0000000Z", "initPid": 42, "leaseSeconds": 120, {{extra}} "connections": {{connections}}, "endpoints": {{endpoints}} }""";

    [Fact]
    public void IPv4_and_IPv6_connections_and_endpoints_round_trip()
    {
        FreezeManifest written = FreezeManifest.Create(4242, TimeSpan.FromSeconds(90.5), [V4, V6], [ListenerV4, ListenerV6]);
        written.Write(_images.Path);

        FreezeManifest read = FreezeManifest.Read(_images.Path);
        Assert.Equal(FreezeManifest.CurrentVersion, read.Version);
        Assert.Equal(4242, read.InitPid);
        Assert.Equal(90.5, read.LeaseSeconds);
        Assert.False(read.OwnNetworkNamespace);
        Assert.Equal(written.CreatedUtc, read.CreatedUtc);
        Assert.Equal([V4, V6], read.ConnectionKeys());
        Assert.Equal([ListenerV4, ListenerV6], read.EndpointKeys());
        Assert.Equal(["198.18.0.1:8080 -> 198.18.0.2:40000", "[2001:db8::1]:443 -> [2001:db8::2]:51000"], read.Connections);
    }

    [Fact]
    public void An_own_namespace_manifest_with_nothing_frozen_round_trips()
    {
        (FreezeManifest.Create(7, TimeSpan.FromSeconds(120), [], []) with { OwnNetworkNamespace = true }).Write(_images.Path);
        FreezeManifest read = FreezeManifest.Read(_images.Path);
        Assert.True(read.OwnNetworkNamespace);
        Assert.Empty(read.ConnectionKeys());
        Assert.Empty(read.EndpointKeys());
    }

    [Fact]
    public void The_file_uses_the_documented_camel_case_names()
    {
        FreezeManifest.Create(1, TimeSpan.FromSeconds(1), [V4], [ListenerV4]).Write(_images.Path);
        string json = File.ReadAllText(ManifestPath);
        foreach (string name in new[] { "version", "createdUtc", "initPid", "leaseSeconds", "ownNetworkNamespace", "connections", "endpoints" })
            Assert.Contains($"\"{name}\"", json);
    }

    [Fact]
    public void Writing_is_atomic_and_leaves_no_temporary_file()
    {
        FreezeManifest.Create(1, TimeSpan.FromSeconds(1), [V4], []).Write(_images.Path);
        FreezeManifest.Create(2, TimeSpan.FromSeconds(1), [V6], []).Write(_images.Path); // replaces the first
        Assert.Equal([FreezeManifest.FileName], Directory.GetFiles(_images.Path).Select(Path.GetFileName));
        Assert.Equal(2, FreezeManifest.Read(_images.Path).InitPid);
    }

    [Fact]
    public void A_missing_manifest_says_the_images_were_not_dumped_with_the_hook()
    {
        string message = Assert.Throws<InvalidDataException>(() => FreezeManifest.Read(_images.Path)).Message;
        Assert.Contains($"there is no {FreezeManifest.FileName}", message);
        Assert.Contains("Dump again with the hook", message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("  \n\t ")]
    public void An_empty_manifest_is_refused_as_empty(string content)
    {
        string message = ReadError(content);
        Assert.Contains($"{FreezeManifest.FileName} is empty", message);
    }

    [Theory]
    [InlineData("{ \"version\": 1, ")]
    [InlineData("not json")]
    [InlineData("[1, 2]")]
    [InlineData("{ \"version\": \"one\" }")]
    [InlineData("{ \"version\": 1, \"connections\": \"198.18.0.1:80 198.18.0.2:80\" }")]
    public void Invalid_json_is_refused_as_corrupt(string content)
    {
        string message = ReadError(content);
        Assert.Contains($"{FreezeManifest.FileName} is corrupt", message);
        Assert.Contains("refusing to restore", message);
    }

    [Fact]
    public void Json_null_is_refused()
        => Assert.Contains("JSON null, not a manifest", ReadError("null"));

    [Fact]
    public void An_object_without_a_version_is_not_taken_for_an_empty_manifest()
        => Assert.Contains($"{FreezeManifest.FileName} is corrupt", ReadError("{}"));

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    public void Another_format_version_is_refused(int version)
        => Assert.Contains($"has format version {version}; this hook reads version 1", ReadError(Json(version: version)));

    [Theory]
    [InlineData("""["198.18.0.1:8080 -> nonsense"]""", "nonsense")]
    [InlineData("""["198.18.0.1:8080"]""", "is not a connection")]
    [InlineData("""["198.18.0.1:8080 -> [2001:db8::2]:80"]""", "mix IPv4 and IPv6")]
    [InlineData("""["198.18.0.1:0 -> 198.18.0.2:80"]""", "port 0")]
    public void A_connection_that_does_not_parse_is_refused_as_corrupt(string connections, string reason)
    {
        string message = ReadError(Json(connections: connections));
        Assert.StartsWith($"{FreezeManifest.FileName} is corrupt: ", message);
        Assert.Contains(reason, message);
    }

    [Theory]
    [InlineData("""["198.18.0.1"]""", "no port")]
    [InlineData("""["198.18.0.1:0"]""", "port 0")]
    public void An_endpoint_that_does_not_parse_is_refused_as_corrupt(string endpoints, string reason)
    {
        string message = ReadError(Json(endpoints: endpoints));
        Assert.StartsWith($"{FreezeManifest.FileName} is corrupt: ", message);
        Assert.Contains(reason, message);
    }

    [Theory]
    [InlineData("null", "[]")]
    [InlineData("[]", "null")]
    [InlineData("[null]", "[]")]
    [InlineData("[]", "[\"0.0.0.0:80\", null]")]
    public void Null_lists_or_elements_are_refused_as_corrupt(string connections, string endpoints)
        => Assert.Contains("must be lists of strings", ReadError(Json(connections: connections, endpoints: endpoints)));

    [Fact]
    public void Unknown_fields_from_a_newer_writer_are_ignored()
    {
        File.WriteAllText(ManifestPath, Json(extra: """ "hostName": "node-a", "checksums": { "a": [1, 2] }, "future": null, """));
        FreezeManifest read = FreezeManifest.Read(_images.Path);
        Assert.Equal([V4], read.ConnectionKeys());
        Assert.Equal([ListenerV4], read.EndpointKeys());
        Assert.Equal(42, read.InitPid);
    }
}

public sealed class CriuHookDispatcherTests
{
    private readonly StringWriter _log = new();

    private HookContext Context() => new(new HookSettings(), _log, criuPid: 1, executablePath: null);

    private static CriuEnvironment Step(CriuAction action, string name, string? images = null, int? pid = null) => new(action, name, images, pid);

    private string[] LogLines => _log.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);

    [Fact]
    public void Handlers_run_in_registration_order()
    {
        var calls = new List<string>();
        var dispatcher = new CriuHookDispatcher()
            .On(CriuAction.PreDump, (_, _) => { calls.Add("first"); return 0; })
            .On(CriuAction.PostDump, (_, _) => { calls.Add("other action"); return 0; })
            .On(CriuAction.PreDump, (_, _) => { calls.Add("second"); return 0; })
            .On(CriuAction.PreDump, (_, _) => { calls.Add("third"); return 0; });
        Assert.Equal(0, dispatcher.Dispatch(Step(CriuAction.PreDump, "pre-dump"), Context()));
        Assert.Equal(["first", "second", "third"], calls);
    }

    [Fact]
    public void The_first_non_zero_result_stops_the_rest_and_is_the_exit_code()
    {
        var calls = new List<string>();
        var dispatcher = new CriuHookDispatcher()
            .On(CriuAction.PreRestore, (_, _) => { calls.Add("first"); return 0; })
            .On(CriuAction.PreRestore, (_, _) => { calls.Add("second"); return 3; })
            .On(CriuAction.PreRestore, (_, _) => { calls.Add("third"); return 0; });
        Assert.Equal(3, dispatcher.Dispatch(Step(CriuAction.PreRestore, "pre-restore"), Context()));
        Assert.Equal(["first", "second"], calls);
    }

    [Fact]
    public void Handlers_get_the_environment_and_context_they_were_dispatched_with()
    {
        CriuEnvironment step = Step(CriuAction.PreDump, "pre-dump", "/proc/1/fd/3", 99);
        HookContext context = Context();
        (CriuEnvironment, HookContext)? seen = null;
        new CriuHookDispatcher().On(CriuAction.PreDump, (e, c) => { seen = (e, c); return 0; }).Dispatch(step, context);
        Assert.Same(step, seen?.Item1);
        Assert.Same(context, seen?.Item2);
    }

    [Theory]
    [InlineData(CriuAction.PostResume, "post-resume")]
    [InlineData(CriuAction.Unknown, "orphan-pts-master")]
    public void An_action_without_handlers_succeeds_without_calling_anything(CriuAction action, string name)
    {
        bool called = false;
        var dispatcher = new CriuHookDispatcher().On(CriuAction.PreDump, (_, _) => { called = true; return 1; });
        Assert.Equal(0, dispatcher.Dispatch(Step(action, name), Context()));
        Assert.False(called);
        Assert.Empty(_log.ToString());
    }

    public static TheoryData<Exception> HandlerFailures() => new()
    {
        new TcpFreezeException("freeze 3 connections", "the map is full"),
        new InvalidDataException("tcpfreeze-manifest.json is corrupt: 'x' has no port"),
        new FormatException("CRTOOLS_INIT_PID is 'abc', not a positive process id."),
        new HookException("CRTOOLS_IMAGE_DIR is not set at pre-dump; there is nowhere to write the manifest"),
        new TcpFreezeException(new BpfException("attach XDP to veth0", Errnos.EPERM)),
        new IOException("disk full"),
        new UnauthorizedAccessException("access denied"),
    };

    [Theory]
    [MemberData(nameof(HandlerFailures))]
    public void A_failing_handler_gives_exit_1_one_log_line_and_stops_the_rest(Exception failure)
    {
        bool laterCalled = false;
        var dispatcher = new CriuHookDispatcher()
            .On(CriuAction.PreDump, (_, _) => throw failure)
            .On(CriuAction.PreDump, (_, _) => { laterCalled = true; return 0; });
        Assert.Equal(1, dispatcher.Dispatch(Step(CriuAction.PreDump, "pre-dump"), Context()));
        Assert.False(laterCalled);
        Assert.Equal([$"tcpfreeze-hook: pre-dump failed: {failure.Message}"], LogLines);
    }

    [Fact]
    public void A_multi_line_message_keeps_the_failure_on_one_line_and_prefixes_the_details()
    {
        var dispatcher = new CriuHookDispatcher()
            .On(CriuAction.PreRestore, (_, _) => throw new HookException("load tcpfreeze.bpf.o: EINVAL; the verifier log follows:\r\n0: (b7) r0 = 0\n\n1: (95) exit\n"));
        Assert.Equal(1, dispatcher.Dispatch(Step(CriuAction.PreRestore, "pre-restore"), Context()));
        Assert.Equal(
            [
                "tcpfreeze-hook: pre-restore failed: load tcpfreeze.bpf.o: EINVAL; the verifier log follows:",
                "tcpfreeze-hook:   0: (b7) r0 = 0",
                "tcpfreeze-hook:   1: (95) exit",
            ],
            LogLines);
    }

    [Fact]
    public void An_unexpected_exception_is_a_bug_and_propagates()
    {
        var dispatcher = new CriuHookDispatcher().On(CriuAction.PreDump, (_, _) => throw new InvalidOperationException("bug"));
        Assert.Throws<InvalidOperationException>(() => dispatcher.Dispatch(Step(CriuAction.PreDump, "pre-dump"), Context()));
    }

    [Fact]
    public void The_TcpFreeze_dispatcher_handles_exactly_pre_dump_post_dump_pre_restore_setup_namespaces_pre_and_post_resume_and_the_network_lock_steps()
    {
        CriuHookDispatcher dispatcher = CriuHookDispatcher.CreateTcpFreeze();
        Assert.Equal(
            new HashSet<CriuAction>
            {
                CriuAction.PreDump, CriuAction.PostDump, CriuAction.PreRestore, CriuAction.SetupNamespaces, CriuAction.PreResume, CriuAction.PostResume,
                CriuAction.NetworkLock, CriuAction.NetworkUnlock,
            },
            dispatcher.Actions.ToHashSet());
    }

    [Fact]
    public void Null_arguments_are_refused()
    {
        var dispatcher = new CriuHookDispatcher();
        Assert.Throws<ArgumentNullException>(() => dispatcher.On(CriuAction.PreDump, null!));
        Assert.Throws<ArgumentNullException>(() => dispatcher.Dispatch(null!, Context()));
        Assert.Throws<ArgumentNullException>(() => dispatcher.Dispatch(Step(CriuAction.PreDump, "pre-dump"), null!));
    }
}

/// <summary>The TcpFreeze handlers' checks of their input, which come before anything needs root or the kernel.</summary>
public sealed class TcpFreezeHookInputTests : IDisposable
{
    private readonly StringWriter _log = new();
    private readonly TempDirectory _images = new();
    private readonly CriuHookDispatcher _hook = CriuHookDispatcher.CreateTcpFreeze();

    public void Dispose() => _images.Dispose();

    private int Run(string action, string? images = null, int? pid = null)
    {
        CriuEnvironment step = CriuEnvironment.Parse(new Dictionary<string, string?>
        {
            ["CRTOOLS_SCRIPT_ACTION"] = action,
            ["CRTOOLS_IMAGE_DIR"] = images,
            ["CRTOOLS_INIT_PID"] = pid?.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        // A pin root nobody uses: should a check be missing, nothing shared is touched.
        var settings = new HookSettings { PinRoot = $"/sys/fs/bpf/tcpfreeze-unit-{Guid.NewGuid():N}" };
        return _hook.Dispatch(step, new HookContext(settings, _log, criuPid: 1, executablePath: null));
    }

    private string OnlyLogLine()
    {
        string[] lines = _log.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        return lines[0];
    }

    [Fact]
    public void Pre_dump_without_an_init_pid_fails_naming_CRTOOLS_INIT_PID()
    {
        Assert.Equal(1, Run("pre-dump", images: _images.Path));
        Assert.StartsWith("tcpfreeze-hook: pre-dump failed: CRTOOLS_INIT_PID is not set", OnlyLogLine());
        Assert.Empty(Directory.GetFileSystemEntries(_images.Path));
    }

    [Fact]
    public void Pre_dump_without_an_images_directory_fails_naming_CRTOOLS_IMAGE_DIR()
    {
        Assert.Equal(1, Run("pre-dump", pid: Environment.ProcessId));
        Assert.StartsWith("tcpfreeze-hook: pre-dump failed: CRTOOLS_IMAGE_DIR is not set", OnlyLogLine());
    }

    [Theory]
    [InlineData("pre-restore")]
    [InlineData("pre-resume")]
    public void Restore_steps_without_an_images_directory_fail_naming_CRTOOLS_IMAGE_DIR(string action)
    {
        Assert.Equal(1, Run(action));
        Assert.StartsWith($"tcpfreeze-hook: {action} failed: CRTOOLS_IMAGE_DIR is not set at {action}", OnlyLogLine());
    }

    [Theory]
    [InlineData("pre-restore")]
    [InlineData("pre-resume")]
    public void Restore_steps_without_a_manifest_fail_naming_it(string action)
    {
        Assert.Equal(1, Run(action, images: _images.Path));
        string line = OnlyLogLine();
        Assert.StartsWith($"tcpfreeze-hook: {action} failed: there is no {FreezeManifest.FileName}", line);
        Assert.Contains("Dump again with the hook", line);
    }

    [Theory]
    [InlineData("{ broken")]
    [InlineData("")]
    [InlineData("""{ "version": 1, "connections": ["198.18.0.1:80 -> bad"], "endpoints": [] }""")]
    public void Pre_restore_with_a_corrupt_manifest_fails_naming_it(string content)
    {
        _images.Write(FreezeManifest.FileName, content);
        Assert.Equal(1, Run("pre-restore", images: _images.Path));
        Assert.StartsWith($"tcpfreeze-hook: pre-restore failed: {FreezeManifest.FileName} is ", OnlyLogLine());
    }

    [Theory]
    [InlineData("pre-restore")]
    [InlineData("pre-resume")]
    public void Restore_steps_of_a_tree_with_its_own_namespace_do_nothing(string action)
    {
        (FreezeManifest.Create(7, TimeSpan.FromSeconds(60), [], []) with { OwnNetworkNamespace = true }).Write(_images.Path);
        Assert.Equal(0, Run(action, images: _images.Path));
        Assert.DoesNotContain("failed", _log.ToString());
    }

    [Fact]
    public void Post_resume_after_a_pre_resume_that_finished_does_nothing_and_says_nothing()
    {
        Assert.Equal(0, Run("post-resume"));
        Assert.Empty(_log.ToString());
    }

    [Theory]
    [InlineData("network-lock")]
    [InlineData("network-unlock")]
    [InlineData("setup-namespaces")]
    public void Namespace_lock_steps_without_an_init_pid_fail_naming_CRTOOLS_INIT_PID(string action)
    {
        Assert.Equal(1, Run(action));
        Assert.StartsWith($"tcpfreeze-hook: {action} failed: CRTOOLS_INIT_PID is not set at {action}", OnlyLogLine());
    }

    [Fact]
    public void Setup_namespaces_of_a_tree_in_this_network_namespace_does_nothing()
    {
        Assert.Equal(0, Run("setup-namespaces", pid: Environment.ProcessId));
        Assert.Empty(_log.ToString());
    }

    [Theory]
    [InlineData("post-restore")]
    [InlineData("post-resume")]
    [InlineData("some-future-step")]
    public void Steps_TcpFreeze_has_no_work_at_succeed_silently(string action)
    {
        Assert.Equal(0, Run(action));
        Assert.Empty(_log.ToString());
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessEnvironmentCollection
{
    /// <summary>Tests that change this process's environment variables or Console.Error run alone.</summary>
    public const string Name = "CriuHookUnit process environment";
}

/// <summary>The hook executable's entry point, which reads the real process environment.</summary>
[Collection(ProcessEnvironmentCollection.Name)]
public sealed class HookProgramTests : IDisposable
{
    private static readonly string[] Variables =
    [
        "CRTOOLS_SCRIPT_ACTION", "CRTOOLS_IMAGE_DIR", "CRTOOLS_INIT_PID", "TCPFREEZE_HOOK_CONFIG",
        "TCPFREEZE_LEASE_SECONDS", "TCPFREEZE_INTERFACES", "TCPFREEZE_PIN_ROOT", "TCPFREEZE_LOG_FILE", "TCPFREEZE_INGRESS",
    ];

    private readonly Dictionary<string, string?> _saved = Variables.ToDictionary(v => v, Environment.GetEnvironmentVariable);
    private readonly TextWriter _savedError = Console.Error;
    private readonly StringWriter _error = new();
    private readonly TempDirectory _folder = new();

    public HookProgramTests()
    {
        foreach (string name in Variables)
            Environment.SetEnvironmentVariable(name, null);
        // Never the machine's own settings file.
        Environment.SetEnvironmentVariable("TCPFREEZE_HOOK_CONFIG", _folder.Write("hook.conf", ""));
        Console.SetError(_error);
    }

    public void Dispose()
    {
        Console.SetError(_savedError);
        foreach ((string name, string? value) in _saved)
            Environment.SetEnvironmentVariable(name, value);
        _folder.Dispose();
    }

    private string[] ErrorLines => _error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);

    [Theory]
    [InlineData("--help")]
    [InlineData("-h")]
    public void Help_exits_0_with_usage(string argument)
    {
        Assert.Equal(0, HookProgram.Run([argument]));
        Assert.Contains("--action-script", _error.ToString());
        Assert.Contains(HookSettings.DefaultConfigPath, _error.ToString());
    }

    [Theory]
    [InlineData("pre-dump")]
    [InlineData("--version")]
    [InlineData("-x", "--help")]
    public void Other_arguments_exit_2_with_usage(params string[] arguments)
    {
        Assert.Equal(2, HookProgram.Run(arguments));
        Assert.Contains("takes no arguments", _error.ToString());
        Assert.Contains("--action-script", _error.ToString());
    }

    [Fact]
    public void Without_CRTOOLS_SCRIPT_ACTION_it_exits_1_saying_it_is_an_action_script()
    {
        Assert.Equal(1, HookProgram.Run([]));
        string line = Assert.Single(ErrorLines);
        Assert.StartsWith("tcpfreeze-hook: CRTOOLS_SCRIPT_ACTION is not set", line);
        Assert.Contains("--action-script", line);
    }

    [Fact]
    public void A_malformed_init_pid_exits_1()
    {
        Environment.SetEnvironmentVariable("CRTOOLS_SCRIPT_ACTION", "pre-dump");
        Environment.SetEnvironmentVariable("CRTOOLS_INIT_PID", "abc");
        Assert.Equal(1, HookProgram.Run([]));
        Assert.Contains("CRTOOLS_INIT_PID", Assert.Single(ErrorLines));
    }

    [Fact]
    public void A_step_TcpFreeze_has_no_work_at_exits_0_without_reading_the_settings()
    {
        Environment.SetEnvironmentVariable("CRTOOLS_SCRIPT_ACTION", "post-restore");
        Environment.SetEnvironmentVariable("TCPFREEZE_HOOK_CONFIG", _folder.File("missing.conf"));
        Assert.Equal(0, HookProgram.Run([]));
        Assert.Empty(_error.ToString());
    }

    [Fact]
    public void A_missing_settings_file_exits_1_naming_it()
    {
        Environment.SetEnvironmentVariable("CRTOOLS_SCRIPT_ACTION", "network-lock");
        Environment.SetEnvironmentVariable("TCPFREEZE_HOOK_CONFIG", _folder.File("missing.conf"));
        Assert.Equal(1, HookProgram.Run([]));
        string line = Assert.Single(ErrorLines);
        Assert.StartsWith("tcpfreeze-hook: TCPFREEZE_HOOK_CONFIG names ", line);
        Assert.Contains("missing.conf", line);
    }

    [Fact]
    public void A_malformed_settings_file_exits_1_with_file_and_line()
    {
        string path = _folder.Write("bad.conf", "lease-seconds = 5\nlease-seconds = forever\n");
        Environment.SetEnvironmentVariable("CRTOOLS_SCRIPT_ACTION", "pre-dump");
        Environment.SetEnvironmentVariable("TCPFREEZE_HOOK_CONFIG", path);
        Assert.Equal(1, HookProgram.Run([]));
        Assert.StartsWith($"tcpfreeze-hook: {path}:2: the lease", Assert.Single(ErrorLines));
    }

    [Fact]
    public void A_settings_file_that_cannot_be_read_exits_1_in_one_line_naming_it()
    {
        // Root reads every ordinary file; /proc/self/mem exists but reading it from offset 0 fails (EIO).
        Environment.SetEnvironmentVariable("CRTOOLS_SCRIPT_ACTION", "network-unlock");
        Environment.SetEnvironmentVariable("TCPFREEZE_HOOK_CONFIG", "/proc/self/mem");
        Assert.Equal(1, HookProgram.Run([]));
        Assert.StartsWith("tcpfreeze-hook: cannot read the hook settings file /proc/self/mem", Assert.Single(ErrorLines));
    }

    /// <summary>A step that logs one line and needs no root: pre-restore of a tree that had a network namespace of its own.</summary>
    private void OwnNamespacePreRestore()
    {
        string images = Directory.CreateDirectory(_folder.File("images")).FullName;
        (FreezeManifest.Create(7, TimeSpan.FromSeconds(60), [], []) with { OwnNetworkNamespace = true }).Write(images);
        Environment.SetEnvironmentVariable("CRTOOLS_SCRIPT_ACTION", "pre-restore");
        Environment.SetEnvironmentVariable("CRTOOLS_IMAGE_DIR", images);
    }

    [Fact]
    public void A_step_exits_0_and_also_logs_to_the_log_file()
    {
        string log = _folder.File("hook.log");
        Environment.SetEnvironmentVariable("TCPFREEZE_HOOK_CONFIG", _folder.Write("hook.conf", $"log-file = {log}\n"));
        OwnNamespacePreRestore();
        Assert.Equal(0, HookProgram.Run([]));
        Assert.StartsWith("tcpfreeze-hook: pre-restore: ", Assert.Single(ErrorLines));
        string logged = Assert.Single(File.ReadAllLines(log));
        Assert.EndsWith(ErrorLines[0], logged); // after a timestamp
    }

    [Fact]
    public void A_log_file_that_cannot_be_opened_does_not_fail_the_step()
    {
        string log = _folder.File("no-such-folder/hook.log");
        Environment.SetEnvironmentVariable("TCPFREEZE_LOG_FILE", log);
        OwnNamespacePreRestore();
        Assert.Equal(0, HookProgram.Run([]));
        Assert.Equal(2, ErrorLines.Length);
        Assert.StartsWith($"tcpfreeze-hook: cannot open the log file {log}", ErrorLines[0]);
        Assert.StartsWith("tcpfreeze-hook: pre-restore: ", ErrorLines[1]);
    }

    [Fact]
    public void Pre_dump_without_an_init_pid_exits_1_through_the_entry_point()
    {
        Environment.SetEnvironmentVariable("CRTOOLS_SCRIPT_ACTION", "pre-dump");
        Environment.SetEnvironmentVariable("CRTOOLS_IMAGE_DIR", _folder.Path);
        Assert.Equal(1, HookProgram.Run([]));
        Assert.StartsWith("tcpfreeze-hook: pre-dump failed: CRTOOLS_INIT_PID is not set", Assert.Single(ErrorLines));
    }
}
