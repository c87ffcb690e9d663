using System.Net;

namespace TcpFreeze.Tests.Criu;

/// <summary>
/// A python3 echo server CRIU can dump and restore (epoll, blocking sends): it echoes
/// every byte back on the connection it came from.
/// </summary>
public static class EchoServer
{
    /// <summary>
    /// The server: a connection that fails (reset by a client) is closed instead of
    /// ending the server, so one lost client never takes the others down.
    /// </summary>
    public const string Script = """
        import selectors, socket, sys
        host, port = sys.argv[1], int(sys.argv[2])
        family = socket.AF_INET6 if ':' in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(4096)
        listener.setblocking(False)
        selector = selectors.DefaultSelector()
        selector.register(listener, selectors.EVENT_READ)
        print('listening', flush=True)
        while True:
            for key, _ in selector.select():
                if key.fileobj is listener:
                    try:
                        conn, _ = listener.accept()
                    except OSError:
                        continue
                    conn.setblocking(True)
                    selector.register(conn, selectors.EVENT_READ)
                    continue
                try:
                    data = key.fileobj.recv(65536)
                    if data:
                        key.fileobj.sendall(data)
                        continue
                except OSError:
                    pass
                selector.unregister(key.fileobj)
                key.fileobj.close()
        """;

    /// <summary>Starts the echo server in namespace <paramref name="ns"/> and waits (bounded) until it listens.</summary>
    public static DumpableServer Start(string ns, string workDirectory, IPEndPoint endpoint)
    {
        string script = Path.Combine(workDirectory, "echo_server.py");
        File.WriteAllText(script, Script);
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
