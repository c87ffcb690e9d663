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

    /// <summary>The namespace's file, for <c>nsenter --net=</c>.</summary>
    public string Path => $"/run/netns/{Name}";

    /// <summary>
    /// Runs a tool inside the namespace with <c>nsenter --net</c> (not <c>ip netns exec</c>,
    /// which also makes a mount namespace), so iptables and nft act on this namespace's
    /// tables; returns its stdout.
    /// </summary>
    public string Exec(string program, IEnumerable<string> arguments, string? input = null, TimeSpan? timeout = null)
        => Commands.Run("nsenter", [$"--net={Path}", program, .. arguments], input, timeout);

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

    internal static void Ip(params string[] arguments) => Commands.Run("ip", arguments);
}
