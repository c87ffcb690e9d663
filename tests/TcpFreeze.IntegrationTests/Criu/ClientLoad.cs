using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace TcpFreeze.Tests.Criu;

/// <summary>
/// N client connections, each sending sequence-numbered requests one after the other
/// and checking that every reply is the expected one: exactly once, in order. A reset,
/// an early close or a wrong reply is recorded as that connection's failure.
/// </summary>
public sealed class ClientLoad : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Connection[] _connections;
    private readonly Task[] _loops;

    private ClientLoad(Connection[] connections, Func<Connection, CancellationToken, Task> loop, TimeSpan spread = default)
    {
        _connections = connections;
        _loops = connections.Select(c => Task.Run(async () =>
        {
            if (spread > TimeSpan.Zero)
                await Delay(spread * c.Id / connections.Length, _stop.Token);
            await loop(c, _stop.Token);
        })).ToArray();
    }

    public sealed class Connection(int id, Socket socket)
    {
        public int Id { get; } = id;
        public Socket Socket { get; } = socket;
        public long Replies;
        public string? Failure;
        /// <summary>When <see cref="Failure"/> happened (Stopwatch ticks).</summary>
        public long FailureTicks;
        public long LastReplyTicks = Stopwatch.GetTimestamp();
        /// <summary>The longest time between two consecutive replies (Stopwatch ticks) since the last <see cref="ResetLongestGaps"/>.</summary>
        public long LongestGapTicks;
        internal readonly byte[] Buffer = new byte[8192];
        internal int Buffered;

        /// <summary>Exchanges answered at or after this time are kept in <see cref="_exchanges"/> (see <see cref="RecordExchangesFrom"/>).</summary>
        internal long RecordFromTicks = long.MaxValue;
        private readonly List<(long Sent, long Replied)> _exchanges = [];

        /// <summary>At most this many exchanges are kept per connection.</summary>
        public const int MaxRecordedExchanges = 4096;

        internal void Record(long sent, long replied)
        {
            if (sent == 0 || replied < Interlocked.Read(ref RecordFromTicks))
                return;
            lock (_exchanges)
                if (_exchanges.Count < MaxRecordedExchanges)
                    _exchanges.Add((sent, replied));
        }

        /// <summary>
        /// The first recorded request/reply pair (Stopwatch ticks: request sent, reply received) whose reply came at or
        /// after <paramref name="ticks"/>; null if none was recorded. Echo and Http loads only (one request at a time).
        /// </summary>
        public (long Sent, long Replied)? FirstAnsweredAfter(long ticks)
        {
            lock (_exchanges)
                foreach ((long Sent, long Replied) e in _exchanges)
                    if (e.Replied >= ticks)
                        return e;
            return null;
        }
    }

    /// <summary>
    /// From now on (<paramref name="fromTicks"/>, a Stopwatch timestamp) each connection of an Echo or Http load keeps
    /// the send and reply times of its exchanges (bounded), for <see cref="Connection.FirstAnsweredAfter"/>: e.g. which
    /// requests were in flight across a migration's end and when they were answered.
    /// </summary>
    public void RecordExchangesFrom(long fromTicks)
    {
        _gcPauseAtRecording = GC.GetTotalPauseDuration();
        foreach (Connection c in _connections)
            Interlocked.Exchange(ref c.RecordFromTicks, fromTicks);
    }

    public IReadOnlyList<Connection> Connections => _connections;

    private TimeSpan _gcPauseAtRecording;

    /// <summary>How long the GC paused this process since <see cref="RecordExchangesFrom"/> (the clients run in it).</summary>
    public TimeSpan GcPauseSinceRecording => GC.GetTotalPauseDuration() - _gcPauseAtRecording;

    /// <summary>Echo protocol: sends "ID:SEQ\n" and expects the same line back.</summary>
    public static ClientLoad Echo(NetworkNamespace ns, IPEndPoint server, int count, TimeSpan pause)
        => new(Open(ns, server, count), async (c, token) =>
        {
            for (long seq = 0; !token.IsCancellationRequested; seq++)
            {
                string line = $"{c.Id}:{seq}\n";
                if (!await Exchange(c, Encoding.ASCII.GetBytes(line), ReadLine, line, token))
                    return;
                await Delay(pause, token);
            }
        });

    /// <summary>
    /// HTTP/1.1 keep-alive: GET /ID/SEQ and expects the body "/ID/SEQ\n" (nginx: return 200 "$uri\n").
    /// With <paramref name="staggered"/> the connections start one after the other over one pause, so
    /// their requests are spread evenly in time instead of arriving together.
    /// </summary>
    public static ClientLoad Http(NetworkNamespace ns, IPEndPoint server, int count, TimeSpan pause, bool staggered = false)
        => new(Open(ns, server, count), async (c, token) =>
        {
            for (long seq = 0; !token.IsCancellationRequested; seq++)
            {
                string path = $"/{c.Id}/{seq}";
                byte[] request = Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: keep-alive\r\n\r\n");
                if (!await Exchange(c, request, ReadHttpBody, path + "\n", token))
                    return;
                await Delay(pause, token);
            }
        }, staggered ? pause : TimeSpan.Zero);

    /// <summary>At most this many lines a streaming connection has sent and not yet had back.</summary>
    public const int StreamWindow = 400;

    /// <summary>
    /// Streaming echo: every <paramref name="interval"/> each connection sends its next
    /// "ID:SEQ\n" without waiting for the reply (at most <see cref="StreamWindow"/>
    /// unanswered), and a reader checks that the echoed lines come back exactly once, in
    /// order. Unlike <see cref="Echo"/>, whose clients fall silent once the server stops
    /// answering, these keep sending while the server is down: without a lock, segments
    /// reach a host with no socket for them and the connection is reset.
    /// </summary>
    public static ClientLoad Stream(NetworkNamespace ns, IPEndPoint server, int count, TimeSpan interval)
        => new(Open(ns, server, count), async (c, token) =>
        {
            Task reader = ReadStream(c, token);
            try
            {
                for (long seq = 0; !token.IsCancellationRequested && c.Failure is null;)
                {
                    if (seq - Interlocked.Read(ref c.Replies) < StreamWindow)
                    {
                        await c.Socket.SendAsync(Encoding.ASCII.GetBytes($"{c.Id}:{seq}\n"), SocketFlags.None, token);
                        seq++;
                    }
                    await Delay(interval, token);
                }
            }
            catch (OperationCanceledException)
            {
            }
            catch (SocketException e)
            {
                Fail(c, $"connection {c.Id}: {e.SocketErrorCode} while sending, after {c.Replies} replies");
            }
            await reader;
        });

    private static async Task ReadStream(Connection c, CancellationToken token)
    {
        try
        {
            while (!token.IsCancellationRequested)
            {
                string? line = await ReadLine(c, token);
                string expected = $"{c.Id}:{c.Replies}\n";
                if (line is null)
                {
                    Fail(c, $"connection {c.Id}: the server closed the connection after {c.Replies} replies");
                    return;
                }
                if (line != expected)
                {
                    Fail(c, $"connection {c.Id}: expected '{expected.Trim()}' but got '{line.Trim()}' after {c.Replies} replies");
                    return;
                }
                RecordReply(c);
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (SocketException e)
        {
            Fail(c, $"connection {c.Id}: {e.SocketErrorCode} after {c.Replies} replies");
        }
    }

    /// <summary>Records the connection's first failure (its sender and reader may both fail).</summary>
    private static void Fail(Connection c, string failure)
    {
        if (Interlocked.CompareExchange(ref c.Failure, failure, null) is null)
            c.FailureTicks = Stopwatch.GetTimestamp();
    }

    /// <summary>Counts one reply and keeps the longest gap between two replies up to date.</summary>
    private static void RecordReply(Connection c, long sentTicks = 0)
    {
        long now = Stopwatch.GetTimestamp();
        c.Record(sentTicks, now);
        Interlocked.Increment(ref c.Replies);
        long gap = now - Interlocked.Exchange(ref c.LastReplyTicks, now);
        for (long longest = Interlocked.Read(ref c.LongestGapTicks); gap > longest; longest = Interlocked.Read(ref c.LongestGapTicks))
            if (Interlocked.CompareExchange(ref c.LongestGapTicks, gap, longest) == longest)
                break;
    }

    private static Connection[] Open(NetworkNamespace ns, IPEndPoint server, int count)
    {
        var connections = new Connection[count];
        for (int i = 0; i < count; i++)
        {
            Socket socket = ns.OpenSocket(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            socket.NoDelay = true;
            socket.Connect(server);
            connections[i] = new Connection(i, socket);
        }
        return connections;
    }

    private static async Task<bool> Exchange(Connection c, byte[] request, Func<Connection, CancellationToken, Task<string?>> read, string expected, CancellationToken token)
    {
        try
        {
            long sent = Stopwatch.GetTimestamp();
            await c.Socket.SendAsync(request, SocketFlags.None, token);
            string? reply = await read(c, token);
            if (reply is null)
            {
                c.Failure = $"connection {c.Id}: the server closed the connection after {c.Replies} replies";
                return false;
            }
            if (reply != expected)
            {
                c.Failure = $"connection {c.Id}: expected '{expected.Trim()}' but got '{reply.Trim()}' after {c.Replies} replies";
                return false;
            }
            RecordReply(c, sent);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        catch (SocketException e)
        {
            c.FailureTicks = Stopwatch.GetTimestamp();
            c.Failure = $"connection {c.Id}: {e.SocketErrorCode} after {c.Replies} replies";
            return false;
        }
    }

    private static async Task Delay(TimeSpan pause, CancellationToken token)
    {
        try
        {
            await Task.Delay(pause, token);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static async Task<bool> Fill(Connection c, CancellationToken token)
    {
        if (c.Buffered == c.Buffer.Length)
            throw new InvalidOperationException("reply too long");
        int n = await c.Socket.ReceiveAsync(c.Buffer.AsMemory(c.Buffered), SocketFlags.None, token);
        c.Buffered += n;
        return n > 0;
    }

    private static string Take(Connection c, int length)
    {
        string text = Encoding.ASCII.GetString(c.Buffer, 0, length);
        Array.Copy(c.Buffer, length, c.Buffer, 0, c.Buffered - length);
        c.Buffered -= length;
        return text;
    }

    private static async Task<string?> ReadLine(Connection c, CancellationToken token)
    {
        while (true)
        {
            int newline = Array.IndexOf(c.Buffer, (byte)'\n', 0, c.Buffered);
            if (newline >= 0)
                return Take(c, newline + 1);
            if (!await Fill(c, token))
                return null;
        }
    }

    private static async Task<string?> ReadHttpBody(Connection c, CancellationToken token)
    {
        int end;
        while ((end = IndexOf(c.Buffer, c.Buffered, "\r\n\r\n"u8)) < 0)
            if (!await Fill(c, token))
                return null;
        string head = Take(c, end + 4);
        if (!head.StartsWith("HTTP/1.1 200", StringComparison.Ordinal))
            return "unexpected status: " + head.Split('\r')[0];
        string? lengthLine = head.Split("\r\n").FirstOrDefault(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase));
        int length = int.Parse(lengthLine!["Content-Length:".Length..].Trim());
        while (c.Buffered < length)
            if (!await Fill(c, token))
                return null;
        return Take(c, length);
    }

    private static int IndexOf(byte[] buffer, int count, ReadOnlySpan<byte> pattern) => buffer.AsSpan(0, count).IndexOf(pattern);

    /// <summary>Waits until every connection has at least <paramref name="minimum"/>(i) replies, or a connection failed.</summary>
    public bool WaitForProgress(Func<int, long> minimum, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            if (_connections.Any(c => c.Failure is not null))
                return false;
            if (_connections.All(c => Interlocked.Read(ref c.Replies) >= minimum(c.Id)))
                return true;
            Thread.Sleep(20);
        }
        return false;
    }

    public long[] Snapshot() => _connections.Select(c => Interlocked.Read(ref c.Replies)).ToArray();

    public IReadOnlyList<string> Failures => _connections.Where(c => c.Failure is not null).Select(c => c.Failure!).ToList();

    /// <summary>The longest time any connection went without a reply, up to now.</summary>
    public TimeSpan LongestSilenceNow => TimeSpan.FromTicks(_connections.Max(c =>
        Stopwatch.GetElapsedTime(Interlocked.Read(ref c.LastReplyTicks)).Ticks));

    /// <summary>Starts a new measurement of the longest gap between consecutive replies (e.g. just before a migration).</summary>
    public void ResetLongestGaps()
    {
        foreach (Connection c in _connections)
            Interlocked.Exchange(ref c.LongestGapTicks, 0);
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        await Task.WhenAll(_loops).WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { });
        foreach (Connection c in _connections)
            c.Socket.Dispose();
        _stop.Dispose();
    }
}
