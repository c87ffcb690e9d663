using System.Net;
using System.Net.Sockets;
using System.Text;
using TcpFreeze.Tests.Infrastructure;

namespace TcpFreeze.Tests.Criu;

/// <summary>
/// The echo server of <see cref="EchoServer"/> (with --setsid and --memory-mib) holding a given amount of memory it has touched: MiB
/// of random bytes (one random MiB, numbered, repeated: no zero page, which CRIU would skip, and quick
/// to make even for a GiB), whose SHA-256 it prints at the start and sends to a connection whose first message is "hash\n" (sequence-numbered echo lines
/// never are). After a migration the hash proves that every page arrived.
/// <para>
/// It runs as PID 1 of a PID namespace of its own (<c>unshare --pid --fork</c>; it makes itself a
/// session leader inside it, as CRIU requires). The test's two "hosts" are network namespaces that
/// share one PID namespace, and a lazy-pages migration restores the process on the destination while
/// the source process still lives (until its memory has been handed over): restored into a new PID
/// namespace, its PIDs do not collide with the source's.
/// </para>
/// </summary>
public sealed class MemoryEchoServer : IDisposable
{

    private readonly DumpableServer _unshare;

    private MemoryEchoServer(DumpableServer unshare, int pid, string hash, IPEndPoint endpoint)
    {
        _unshare = unshare;
        Pid = pid;
        Hash = hash;
        Endpoint = endpoint;
    }

    /// <summary>The server's PID (in the test's PID namespace; 1 in its own).</summary>
    public int Pid { get; }

    /// <summary>The SHA-256 (hex) of its memory, as it computed it at the start.</summary>
    public string Hash { get; }

    public IPEndPoint Endpoint { get; }

    /// <summary>The restored server's PID, once the test knows it (killed on dispose).</summary>
    public int? RestoredPid { get; set; }

    /// <summary>Starts the server in namespace <paramref name="ns"/> and waits (bounded) until it listens.</summary>
    public static MemoryEchoServer Start(string ns, string workDirectory, IPEndPoint endpoint, int mebibytes, TimeSpan? startBound = null)
    {
        string script = EchoServer.Write(workDirectory);
        DumpableServer unshare = DumpableServer.Start(ns, workDirectory, "unshare", "--pid", "--fork", "python3", script,
            endpoint.Address.ToString(), endpoint.Port.ToString(), "--setsid", "--memory-mib", mebibytes.ToString());
        try
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            TimeSpan bound = startBound ?? TimeSpan.FromSeconds(30);
            while (clock.Elapsed < bound && !unshare.Log.Contains("listening") && unshare.IsRunning)
                Thread.Sleep(20);
            string[] words = unshare.Log.Split('\n').FirstOrDefault(l => l.StartsWith("listening ", StringComparison.Ordinal))?.Split(' ') ?? [];
            if (words.Length != 2)
                throw new InvalidOperationException($"the memory echo server did not start (bound {bound.TotalSeconds:F0} s): {unshare.Log}");
            int pid = ChildOf(unshare.Pid) ?? throw new InvalidOperationException("the memory echo server's process was not found under unshare");
            return new MemoryEchoServer(unshare, pid, words[1].Trim(), endpoint);
        }
        catch
        {
            unshare.Dispose();
            throw;
        }
    }

    /// <summary>Waits (bounded) until the source process is gone (CRIU killed it once its memory was handed over).</summary>
    public bool WaitUntilSourceGone(TimeSpan timeout)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            if (!DumpableServer.IsAlive(Pid))
                return true;
            Thread.Sleep(10);
        }
        return false;
    }

    /// <summary>Asks the server (from namespace <paramref name="client"/>, on a new connection) for the hash of its memory.</summary>
    public string QueryHash(NetworkNamespace client, TimeSpan timeout)
    {
        using Socket socket = client.OpenSocket(Endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        socket.ReceiveTimeout = socket.SendTimeout = (int)timeout.TotalMilliseconds;
        socket.Connect(Endpoint);
        socket.Send("hash\n"u8);
        var reply = new StringBuilder();
        var buffer = new byte[128];
        while (!reply.ToString().Contains('\n'))
        {
            int n = socket.Receive(buffer);
            if (n == 0)
                break;
            reply.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }
        return reply.ToString().Trim();
    }

    private static int? ChildOf(int pid)
    {
        try
        {
            string children = File.ReadAllText($"/proc/{pid}/task/{pid}/children").Trim();
            return int.TryParse(children.Split(' ')[0], out int child) ? child : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    public void Dispose()
    {
        foreach (int pid in new[] { Pid, RestoredPid ?? 0 })
            if (pid > 0 && DumpableServer.IsAlive(pid))
                try
                {
                    System.Diagnostics.Process.GetProcessById(pid).Kill();
                }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
                {
                    // gone already
                }
        _unshare.Dispose();
    }
}
