using System.Net;

namespace TcpFreeze.Tests.Criu;

/// <summary>
/// A python3 echo server CRIU can dump and restore (epoll, blocking sends): it echoes
/// every byte back on the connection it came from.
/// </summary>
public static class EchoServer
{
    /// <summary>
    /// The one echo server of the tests: <c>python3 SCRIPT HOST PORT [options]</c>. It prints "listening" once it
    /// listens (with <c>--memory-mib</c>, "listening SHA256"). A connection that fails (reset by a client) is closed
    /// instead of ending the server, so one lost client never takes the others down. Options:
    /// <list type="bullet">
    /// <item><c>--setsid</c>: becomes a session leader first (CRIU dumps the root of a PID namespace only as one).</item>
    /// <item><c>--memory-mib N</c>: holds N MiB of random bytes it has touched (one random MiB, numbered, repeated: no zero
    /// page, which CRIU would skip), and answers a connection's "hash\n" with their SHA-256.</item>
    /// <item><c>--v6only</c>: sets IPV6_V6ONLY on an IPv6 listener.</item>
    /// <item><c>--hold-half-closed FILE</c>: keeps a connection whose peer has shut down its sending side (CLOSE_WAIT
    /// here) open, not closed, until FILE exists.</item>
    /// <item><c>--no-accept</c>: never accepts: connections wait in the listener's queue.</item>
    /// </list>
    /// </summary>
    public const string Script = """
        import argparse, hashlib, os, selectors, socket, time
        parser = argparse.ArgumentParser()
        parser.add_argument('host')
        parser.add_argument('port', type=int)
        parser.add_argument('--setsid', action='store_true')
        parser.add_argument('--memory-mib', type=int)
        parser.add_argument('--v6only', action='store_true')
        parser.add_argument('--hold-half-closed')
        parser.add_argument('--no-accept', action='store_true')
        args = parser.parse_args()
        if args.setsid:
            try:
                os.setsid()
            except OSError:
                pass
        memory = digest = None
        if args.memory_mib is not None:
            block = os.urandom(1 << 20)
            memory = b''.join(i.to_bytes(8, 'little') + block[8:] for i in range(args.memory_mib))
            digest = hashlib.sha256(memory).hexdigest()
        family = socket.AF_INET6 if ':' in args.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and args.v6only:
            listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        listener.bind((args.host, args.port))
        listener.listen(4096)
        print('listening' if digest is None else 'listening ' + digest, flush=True)
        if args.no_accept:
            while True:
                time.sleep(0.1)
        listener.setblocking(False)
        selector = selectors.DefaultSelector()
        selector.register(listener, selectors.EVENT_READ)
        half_closed = []
        while True:
            for key, _ in selector.select(0.05 if args.hold_half_closed else None):
                if key.fileobj is listener:
                    try:
                        conn, _ = listener.accept()
                    except OSError:
                        continue
                    conn.setblocking(True)
                    selector.register(conn, selectors.EVENT_READ)
                    continue
                conn = key.fileobj
                try:
                    data = conn.recv(65536)
                    if data == b'hash\n' and memory is not None:
                        conn.sendall((hashlib.sha256(memory).hexdigest() + '\n').encode())
                        continue
                    if data:
                        conn.sendall(data)
                        continue
                except OSError:
                    data = None
                selector.unregister(conn)
                if data == b'' and args.hold_half_closed:
                    half_closed.append(conn)
                else:
                    conn.close()
            if half_closed and os.path.exists(args.hold_half_closed):
                for conn in half_closed:
                    conn.close()
                half_closed = []
        """;

    /// <summary>Writes <see cref="Script"/> into <paramref name="folder"/> as echo_server.py; returns its path.</summary>
    public static string Write(string folder)
    {
        string path = Path.Combine(folder, "echo_server.py");
        File.WriteAllText(path, Script);
        return path;
    }

    /// <summary>Starts the echo server in namespace <paramref name="ns"/> and waits (bounded) until it listens.</summary>
    public static DumpableServer Start(string ns, string workDirectory, IPEndPoint endpoint)
    {
        string script = Write(workDirectory);
        var server = DumpableServer.Start(ns, workDirectory, "python3", script, endpoint.Address.ToString(), endpoint.Port.ToString());
        for (int i = 0; i < 500 && !server.Log.Contains("listening"); i++)
            Thread.Sleep(10);
        if (!server.Log.Contains("listening"))
        {
            server.Dispose();
            throw new InvalidOperationException($"the echo server did not start: {server.Log}");
        }
        return server;
    }
}
