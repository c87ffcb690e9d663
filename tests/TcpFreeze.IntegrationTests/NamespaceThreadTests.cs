using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests;

/// <summary>
/// Work for another network namespace never leaves a thread of this process in it (issue 22, item 1): a thread
/// inherits its creator's namespace, and the thread pool creates workers from whichever thread queues work.
/// </summary>
[Trait("Privileges", "root")]
public sealed class NamespaceThreadTests
{
    [RootFact]
    public void After_the_public_api_worked_in_another_namespace_every_thread_of_the_process_is_in_the_host_namespace()
    {
        using var network = TestNetwork.Create("tfec");
        using var pins = new PinRoot("tfec");
        using var loggers = new PoolQueueingLoggerFactory();
        FreezerOptions options = pins.Options(network.B) with { LoggerFactory = loggers };
        try
        {
            // Sockets opened in there work from pool threads, asynchronously.
            using Socket listener = network.B.OpenSocket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen();
            using Socket client = network.B.OpenSocket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            Task<Socket> accepting = listener.AcceptAsync();
            client.ConnectAsync(listener.LocalEndPoint!).Wait(TimeSpan.FromSeconds(10));
            using Socket server = accepting.Result;
            Assert.Equal(network.B.Cookie, CookieOf(client));

            using (TcpFreezer freezer = TcpFreezer.Attach(options))
            {
                var key = new ConnectionKey((IPEndPoint)client.LocalEndPoint!, (IPEndPoint)client.RemoteEndPoint!);
                freezer.Freeze([key], lease: TimeSpan.FromSeconds(30));
                freezer.Thaw([key]);
            }

            // The one way TcpFreeze runs user code while inside: a log message written there. The user's logger
            // queues pool work and waits for it; it must run after the namespace thread has ended, on ours.
            network.B.Run(() => options.CreateLogger(FreezerOptions.LogCategory)!.LogInformation("written inside {Namespace}", network.NameB));
            Assert.True(loggers.Calls > 0, "the test's logger was never called, so it proves nothing");

            GrowThePool();
            AssertEveryThreadInTheHostNamespace();
        }
        finally
        {
            TcpFreezer.Detach(options);
        }
    }

    private static ulong CookieOf(Socket socket)
    {
        Span<byte> value = stackalloc byte[8];
        socket.GetRawSocketOption(1 /* SOL_SOCKET */, 71 /* SO_NETNS_COOKIE */, value);
        return BitConverter.ToUInt64(value);
    }

    /// <summary>Blocks enough work items at once that the pool must create new workers (bounded: 64 items of 50 ms).</summary>
    private static void GrowThePool()
    {
        Task[] blocking = [.. Enumerable.Range(0, 64).Select(_ => Task.Run(() => Thread.Sleep(50)))];
        Assert.True(Task.WaitAll(blocking, TimeSpan.FromSeconds(60)));
    }

    private static void AssertEveryThreadInTheHostNamespace()
    {
        string host = new FileInfo("/proc/self/ns/net").LinkTarget!;
        var strangers = new List<string>();
        foreach (string task in Directory.EnumerateDirectories("/proc/self/task"))
        {
            string? comm, ns;
            try
            {
                comm = File.ReadAllText(Path.Combine(task, "comm")).Trim();
                ns = new FileInfo(Path.Combine(task, "ns", "net")).LinkTarget;
            }
            catch (IOException)
            {
                continue; // the thread ended meanwhile
            }
            // TcpFreeze's own dedicated namespace threads (of tests running beside this one) end with their work. The
            // runtime's background GC and tiered-compilation threads are made on first need by whichever thread needs
            // them, which may be a namespace thread (a CI run saw '.NET BGC' made there); they run no user code and
            // open no socket, so their namespace changes nothing. Pool workers and every other thread are checked.
            bool runtimeServiceThread = comm is ".NET BGC" || comm.StartsWith(".NET Tiered", StringComparison.Ordinal);
            if (ns is not null && ns != host && comm != "tcpfreeze-netns" && !runtimeServiceThread)
                strangers.Add($"thread {Path.GetFileName(task)} '{comm}' in {ns}");
        }
        Assert.True(strangers.Count == 0, $"threads outside the host namespace {host}: {string.Join("; ", strangers)}");
    }

    /// <summary>A logger that makes the pool create workers on every call and waits for their work, as an async logging provider might.</summary>
    private sealed class PoolQueueingLoggerFactory : ILoggerFactory
    {
        private int _calls;

        public int Calls => Volatile.Read(ref _calls);

        public ILogger CreateLogger(string categoryName) => new Logger(this);

        public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();

        public void Dispose()
        {
        }

        private sealed class Logger(PoolQueueingLoggerFactory owner) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            // libbpf's debug chatter would only make the test slow.
            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (!IsEnabled(logLevel))
                    return;
                Interlocked.Increment(ref owner._calls);
                // The pool creates a worker from the queueing thread when it has fewer than its goal: raise the goal
                // so that this thread must create some (an early Task.Run in a fresh process is the same case).
                ThreadPool.GetMinThreads(out int workers, out int io);
                int existing = ThreadPool.ThreadCount;
                ThreadPool.SetMinThreads(Math.Max(workers, existing) + 8, io);
                try
                {
                    Task[] work = [.. Enumerable.Range(0, existing + 8).Select(_ => Task.Run(() => Thread.Sleep(20)))];
                    Task.WaitAll(work, TimeSpan.FromSeconds(30));
                }
                finally
                {
                    ThreadPool.SetMinThreads(workers, io);
                }
            }
        }
    }
}
