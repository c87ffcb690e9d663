namespace TcpFreeze.Benchmarks;

/// <summary>Settings of this run that the benchmark classes read (the run is in-process).</summary>
internal static class BenchSettings
{
    /// <summary>The largest connection count a smoke run (<c>--smoke</c>) uses.</summary>
    public const int SmokeMaxConnections = 100;

    /// <summary>
    /// A smoke run checks that every benchmark works, on the shared machine, in a minute or
    /// two: connection counts above <see cref="SmokeMaxConnections"/> are left out and each
    /// case runs once.
    /// </summary>
    public static bool Smoke { get; set; }

    /// <summary>The connection counts a class runs: all of <paramref name="full"/>, or its small ones in a smoke run.</summary>
    public static IEnumerable<int> Connections(params int[] full)
        => Smoke ? full.Where(n => n <= SmokeMaxConnections) : full;
}
