using TcpFreeze.Ebpf.Interop;

namespace TcpFreeze.Tests.Infrastructure;

/// <summary>A pin root of this test's own under /sys/fs/bpf, removed on dispose.</summary>
public sealed class PinRoot : IDisposable
{
    private static int s_counter;

    /// <summary>
    /// A pin root named <paramref name="tag"/>, the process id and a counter. Without a tag: under
    /// /sys/fs/bpf/$TCPFREEZE_TEST_TAG/ when that is set, else /sys/fs/bpf/tcpfreeze-test-*.
    /// </summary>
    public PinRoot(string? tag = null)
    {
        tag ??= TestTag.FromEnvironment is { } own ? own + "/" : "tcpfreeze-test-";
        Path = $"/sys/fs/bpf/{tag}{Environment.ProcessId}-{Interlocked.Increment(ref s_counter)}";
        BpfFs.EnsureDirectory(Path);
    }

    public string Path { get; }

    public FreezerOptions Options(NetworkNamespace ns, params string[] interfaces)
        => new() { PinRoot = Path, Namespace = ns, Interfaces = interfaces.Length == 0 ? null : interfaces };

    public void Dispose()
    {
        if (!Directory.Exists(Path))
            return;
        foreach (string directory in Directory.EnumerateDirectories(Path))
        {
            foreach (string pin in Directory.EnumerateFiles(directory))
                File.Delete(pin);
            Directory.Delete(directory);
        }
        Directory.Delete(Path);
    }
}
