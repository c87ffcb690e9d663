using TcpFreeze.CriuHooks;
using TcpFreeze.Tests.Infrastructure;

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
        Assert.Equal(Lease.Default, settings.Lease);
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
        Assert.Matches("is not a number of seconds; a lease is a number of seconds from 0.001 to 86400|is too long: a lease must be at most 86,400 s|is too short: a lease must be at least 0.001 s", message);
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
    public void TCPFREEZE_KEEP_ATTACHED_beats_the_file_and_a_bad_value_names_the_variable()
    {
        using var folder = new TempDirectory();
        string path = folder.Write("hook.conf", "keep-attached = false\n");
        Assert.True(HookSettings.Load(Environment(("TCPFREEZE_HOOK_CONFIG", path), ("TCPFREEZE_KEEP_ATTACHED", "true"))).KeepAttached);
        Assert.False(HookSettings.Load(Environment(("TCPFREEZE_HOOK_CONFIG", path), ("TCPFREEZE_KEEP_ATTACHED", ""))).KeepAttached);
        var e = Assert.Throws<FormatException>(() => HookSettings.Load(Environment(("TCPFREEZE_HOOK_CONFIG", path), ("TCPFREEZE_KEEP_ATTACHED", "maybe"))));
        Assert.Contains("TCPFREEZE_KEEP_ATTACHED", e.Message);
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
