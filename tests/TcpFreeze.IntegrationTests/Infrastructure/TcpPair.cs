using System.Net;
using System.Net.Sockets;
using System.Text;

namespace TcpFreeze.Tests.Infrastructure;

/// <summary>
/// A real TCP connection: the client socket lives in one namespace, the listener and
/// the accepted socket in another (or both on loopback in one). Sockets are created
/// on a thread inside their namespace and keep that namespace afterwards.
/// </summary>
public sealed class TcpPair : IDisposable
{
    private TcpPair(Socket listener, Socket client, Socket server)
    {
        Listener = listener;
        Client = client;
        Server = server;
    }

    public Socket Listener { get; }
    public Socket Client { get; }
    public Socket Server { get; }

    /// <summary>The connection as the server's host sees it.</summary>
    public ConnectionKey ServerView => new((IPEndPoint)Server.LocalEndPoint!, (IPEndPoint)Server.RemoteEndPoint!);

    /// <summary>The connection as the client's host sees it.</summary>
    public ConnectionKey ClientView => new((IPEndPoint)Client.LocalEndPoint!, (IPEndPoint)Client.RemoteEndPoint!);

    public static Socket Listen(NetworkNamespace ns, IPEndPoint endpoint)
        => ns.Run(() =>
        {
            var listener = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            listener.Bind(endpoint);
            listener.Listen(64);
            return listener;
        });

    public static Socket NewClient(NetworkNamespace ns, AddressFamily family)
        => ns.Run(() => new Socket(family, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true });

    public static TcpPair Open(NetworkNamespace clientNs, NetworkNamespace serverNs, IPEndPoint serverEndpoint)
    {
        Socket listener = Listen(serverNs, serverEndpoint);
        Socket client = NewClient(clientNs, serverEndpoint.AddressFamily);
        client.Connect(serverEndpoint);
        Socket server = listener.Accept();
        server.NoDelay = true;
        return new TcpPair(listener, client, server);
    }

    /// <summary>Whether any byte arrives on <paramref name="socket"/> within <paramref name="wait"/>.</summary>
    /// <summary>Accepts the next connection on <paramref name="listener"/>, waiting at most <paramref name="wait"/>.</summary>
    public static Socket Accept(Socket listener, TimeSpan wait)
    {
        if (!listener.Poll(wait, SelectMode.SelectRead))
            throw new TimeoutException($"no connection reached {listener.LocalEndPoint} within {wait}");
        return listener.Accept();
    }

    public static bool Readable(Socket socket, TimeSpan wait) => socket.Poll(wait, SelectMode.SelectRead);

    /// <summary>Reads exactly <paramref name="count"/> bytes, waiting at most <paramref name="timeout"/>.</summary>
    public static byte[] ReadExactly(Socket socket, int count, TimeSpan timeout)
    {
        var buffer = new byte[count];
        int read = 0;
        DateTime deadline = DateTime.UtcNow + timeout;
        while (read < count)
        {
            TimeSpan left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || !socket.Poll(left, SelectMode.SelectRead))
                throw new TimeoutException($"only {read} of {count} bytes arrived within {timeout}");
            int n = socket.Receive(buffer, read, count - read, SocketFlags.None);
            if (n == 0)
                throw new IOException($"the peer closed the connection after {read} of {count} bytes");
            read += n;
        }
        return buffer;
    }

    /// <summary>Sends a message and checks that the peer reads it back unchanged.</summary>
    public static void AssertRoundTrip(Socket from, Socket to, string text)
    {
        byte[] bytes = Encoding.ASCII.GetBytes(text);
        from.Send(bytes);
        Assert.Equal(text, Encoding.ASCII.GetString(ReadExactly(to, bytes.Length, TimeSpan.FromSeconds(10))));
    }

    /// <summary>TCP_INFO's tcpi_state (1 = ESTABLISHED).</summary>
    public static int TcpState(Socket socket)
    {
        Span<byte> info = stackalloc byte[104];
        socket.GetRawSocketOption(6 /* IPPROTO_TCP */, 11 /* TCP_INFO */, info);
        return info[0];
    }

    public const int Established = 1;

    /// <summary>SO_ERROR: a pending error such as ECONNRESET; 0 when healthy.</summary>
    public static int PendingError(Socket socket) => (int)socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)!;

    public void Dispose()
    {
        Client.Dispose();
        Server.Dispose();
        Listener.Dispose();
    }
}
