using System.Diagnostics;
using TcpFreeze;

namespace TcpFreeze.Benchmarks;

/// <summary>
/// A network namespace and pin root of the benchmark's own (the benchmark never
/// attaches to the host's interfaces), removed in cleanup.
/// </summary>
internal sealed class BenchNamespace : IDisposable
{
    public BenchNamespace(string purpose)
    {
        Name = $"tfbench-{purpose}-{Environment.ProcessId}";
        PinRoot = $"/sys/fs/bpf/tcpfreeze-bench-{purpose}-{Environment.ProcessId}";
        Ip("netns", "add", Name);
        Ip("-n", Name, "link", "set", "lo", "up");
        Options = new FreezerOptions { PinRoot = PinRoot, Namespace = NetworkNamespace.Named(Name), MaxConnections = 131_072 };
    }

    public string Name { get; }
    public string PinRoot { get; }
    public FreezerOptions Options { get; }

    public void Dispose()
    {
        try
        {
            TcpFreezer.Detach(Options);
        }
        finally
        {
            if (Directory.Exists(PinRoot))
                Directory.Delete(PinRoot, recursive: true);
            Ip("netns", "del", Name);
        }
    }

    public static ConnectionKey[] Keys(int count)
        => Enumerable.Range(0, count)
            .Select(i => ConnectionKey.Parse($"198.18.{i / 60000 % 256}.1:{1 + i % 60000}", $"198.19.{i / 250 % 256}.{1 + i % 250}:40000"))
            .ToArray();

    private static void Ip(params string[] arguments)
    {
        var info = new ProcessStartInfo("ip") { RedirectStandardError = true };
        foreach (string a in arguments)
            info.ArgumentList.Add(a);
        using Process process = Process.Start(info)!;
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"ip {string.Join(' ', arguments)}: {process.StandardError.ReadToEnd()}");
    }
}
