using System.Runtime.CompilerServices;

namespace TcpFreeze.Tests.Infrastructure;

/// <summary>
/// The client loads of the CRIU and resume tests run hundreds of connections as async loops on this process's
/// thread pool, and the tests measure their exchanges in milliseconds. On a 2-core machine the pool starts with two
/// workers and adds one about every half second once they are all taken; a test thread that waits synchronously
/// (for CRIU, for a condition) holds one of them. A run where every connection's next request went out about 1 s
/// late, in lockstep, with the server idle and no segment lost (the client's delayed-ACK timer fired on each
/// connection: its next request, which carries the ACK, was not sent within 40 ms) was this process, not the
/// network (RESUME.md). So the pool starts with enough workers that a waiting test never starves the clients.
/// </summary>
internal static class ThreadPoolFloor
{
    /// <summary>Worker and I/O threads the pool keeps ready from the start.</summary>
    public const int Threads = 64;

    [ModuleInitializer]
    internal static void Raise()
    {
        ThreadPool.GetMinThreads(out int workers, out int io);
        ThreadPool.SetMinThreads(Math.Max(workers, Threads), Math.Max(io, Threads));
    }
}
