using System.Globalization;

namespace TcpFreeze.Tests.Criu;

/// <summary>
/// Raises the kernel's fs.pipe-max-size for a lazy-pages migration and puts it back afterwards.
/// CRIU 4.2.1's lazy page server (criu/page-pipe.c, pipe_read_dest_init) grows the pipe it tee()s
/// requested pages through to PIPE_MAX_SIZE pages (819 pages, 3.2 MiB), which is above the default
/// limit of 1 MiB and needs CAP_SYS_RESOURCE, which root lacks on this machine. CRIU ignores that
/// failure, the pipe stays at 64 KiB, and the first request for more than 16 pages fails the transfer
/// ("tee: 65536: Operation not permitted", "Lazy pages transfer FAILED"): checked here.
/// </summary>
public sealed class PipeSizeLimit : IDisposable
{
    private const string Path = "/proc/sys/fs/pipe-max-size";

    /// <summary>What CRIU's page server needs, rounded up to a power of two.</summary>
    public const long ForCriuLazyPages = 4L << 20;

    private readonly long? _previous;

    private PipeSizeLimit(long? previous) => _previous = previous;

    public static PipeSizeLimit AtLeast(long bytes)
    {
        long current = long.Parse(File.ReadAllText(Path).Trim(), CultureInfo.InvariantCulture);
        if (current >= bytes)
            return new PipeSizeLimit(null);
        File.WriteAllText(Path, bytes.ToString(CultureInfo.InvariantCulture));
        return new PipeSizeLimit(current);
    }

    public void Dispose()
    {
        if (_previous is { } previous)
            File.WriteAllText(Path, previous.ToString(CultureInfo.InvariantCulture));
    }
}
