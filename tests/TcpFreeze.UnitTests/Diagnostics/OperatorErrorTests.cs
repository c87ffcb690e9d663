using TcpFreeze.Ebpf.Interop;
using TcpFreeze.Native;

namespace TcpFreeze.Tests.Diagnostics;

/// <summary>Errors an operator meets, worded with what to do: the parts that need no kernel.</summary>
public sealed class OperatorErrorTests
{
    [Fact]
    public void A_missing_libbpf_says_to_install_libbpf_1_1_or_later_and_names_the_package()
    {
        var missing = new DllNotFoundException("Unable to load shared library 'libbpf.so.1' or one of its dependencies.");
        foreach (Exception thrown in new Exception[] { missing, new TypeInitializationException("TcpFreeze.Ebpf.Interop.Libbpf", missing) })
        {
            var e = Assert.Throws<TcpFreezeException>(() => TcpFreezeException.Guard(() => throw thrown));
            Assert.Contains("libbpf.so.1 cannot be loaded: install libbpf 1.1 or later", e.Message);
            Assert.Contains("libbpf1", e.Message);
            Assert.DoesNotContain("DllNotFoundException", e.Message);
            Assert.Same(thrown, e.InnerException);
        }
        // Another library's absence is not libbpf's.
        Assert.Throws<DllNotFoundException>(() => TcpFreezeException.Guard(() => throw new DllNotFoundException("Unable to load shared library 'libfoo.so'")));
    }

    [Fact]
    public void A_pin_folder_off_bpffs_is_pointed_under_a_bpffs_mount_never_told_to_mount_bpffs_over_it()
    {
        string hint = BpfFs.ChooseFolderHint("/tmp/my-pins");
        Assert.DoesNotContain("mount -t bpf bpf /tmp", hint);
        Assert.Contains("my-pins", hint);
        if (BpfFs.MountPoints().Any())
            Assert.Contains($"choose a folder under a bpffs mount, e.g. {Path.Join(BpfFs.MountPoints().Contains(BpfFs.DefaultMountPoint) ? BpfFs.DefaultMountPoint : BpfFs.MountPoints().First(), "my-pins")}", hint);
        else
            Assert.Contains($"mount -t bpf -o mode=0700 bpf {BpfFs.DefaultMountPoint}", hint);
    }

    [Fact]
    public void ENOTSUPP_is_explained_not_an_unknown_error()
    {
        string message = new BpfException("use /tmp/x for BPF pins", Errnos.ENOTSUPP).Message;
        Assert.Contains("ENOTSUPP (Operation is not supported)", message);
        Assert.DoesNotContain("Unknown error", message);
    }

    [Fact]
    public void An_unknown_interface_name_is_a_native_call_failure_not_a_bpf_one()
    {
        var e = Assert.Throws<NativeCallException>(() => NetworkInterfaceNames.GetIndex("tfc-no-such0"));
        Assert.IsNotType<BpfException>(e);
        Assert.Equal(Errnos.ENODEV, e.Errno);
        Assert.Contains("find network interface 'tfc-no-such0': ENODEV", e.Message);
    }

    [Fact]
    public void A_load_refused_with_EPERM_gives_the_remedy_before_the_log()
    {
        var e = new BpfLoadException("load BPF object 'tcpfreeze'", Errnos.EPERM, "libbpf: Error in bpf_object__probe_loading():Operation not permitted(1).\n");
        string firstLine = e.Message.Split('\n')[0];
        Assert.StartsWith("load BPF object 'tcpfreeze': EPERM (Operation not permitted); ", firstLine);
        Assert.Contains(Errnos.Hint(Errnos.EPERM)!, firstLine);
        Assert.Contains("probe_loading", e.Message);

        // A verifier rejection (EACCES with its log) keeps the log as the explanation.
        var rejected = new BpfLoadException("load Xdp program 'x'", Errnos.EACCES, "R0 !read_ok\n");
        Assert.Contains("; the verifier log follows:", rejected.Message.Split('\n')[0]);
    }

    [Theory]
    [InlineData("stats --format xml", "--format: 'xml' is not a format of stats; use text, json or prometheus.")]
    [InlineData("stats --json --format prometheus", "--json and --format prometheus contradict each other")]
    public void Stats_format_mistakes_are_usage_errors(string arguments, string message)
        => TcpFreezeCommand.Run(arguments.Split(' ')).FailsWith(2, message);

    [Fact]
    public void The_help_says_netns_takes_a_name()
        => Assert.Contains("a name of 'ip netns list'", TcpFreezeCommand.Run("--help").Output);

    [Fact]
    public void Every_error_line_reads_in_lower_case_also_a_message_of_the_parsers_own()
    {
        CliResult result = TcpFreezeCommand.Run("attach", "--dev");
        result.FailsWith(2, "tcpfreeze: required argument missing for option: '--dev'");
    }
}
