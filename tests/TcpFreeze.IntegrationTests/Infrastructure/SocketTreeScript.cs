using System.Net.Sockets;

namespace TcpFreeze.Tests.Infrastructure;

/// <summary>
/// A python3 process tree in namespace A of a <see cref="TestNetwork"/> that holds every kind of socket
/// discovery must find. It listens on BASE+1 (IPv4, A's address), BASE+2 (dual-stack [::]) and BASE+3
/// (IPv6, A's address) and prints "listening"; accepts one connection on each listener named in
/// <c>accepting</c>, in that order; connects out to PEER on B over IPv4 and IPv6 (and, with half-close, shuts
/// the IPv6 one for writing: FIN_WAIT2 on its side once B reads the FIN); forks a child that connects out
/// to PEER over IPv4 once more; prints "ready CHILD_PID". Both hold everything until stdin closes; the alarm
/// ends them even if the test forgets.
/// </summary>
public static class SocketTreeScript
{
    private const string Script = """
        import os, signal, socket, sys
        signal.alarm(120)
        a4, a6, b4, b6 = sys.argv[1:5]
        base, peer, accepting, half_close = int(sys.argv[5]), int(sys.argv[6]), sys.argv[7], sys.argv[8] == 'half-close'
        def listen(family, address, port):
            s = socket.socket(family, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if address == '::':
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.bind((address, port))
            s.listen(8)
            return s
        listeners = [listen(socket.AF_INET, a4, base + 1), listen(socket.AF_INET6, '::', base + 2), listen(socket.AF_INET6, a6, base + 3)]
        print('listening', flush=True)
        accepted = [listeners[int(n) - 1].accept()[0] for n in accepting]
        o1 = socket.create_connection((b4, peer), timeout=10)
        o2 = socket.create_connection((b6, peer), timeout=10)
        if half_close:
            o2.shutdown(socket.SHUT_WR)
        r, w = os.pipe()
        child = os.fork()
        if child == 0:
            signal.alarm(120)
            o3 = socket.create_connection((b4, peer), timeout=10)
            os.write(w, b'x')
            sys.stdin.read()
            os._exit(0)
        os.read(r, 1)
        print('ready', child, flush=True)
        sys.stdin.read()
        """;

    /// <param name="accepting">The listeners (1, 2, 3) that accept one connection each, in order, e.g. "23".</param>
    public static ScriptProcess Start(TestNetwork network, int basePort, int peerPort, string accepting, bool halfCloseIpv6)
        => ScriptProcess.Start(network.NameA, Script,
            network.AddressA(AddressFamily.InterNetwork).ToString(), network.AddressA(AddressFamily.InterNetworkV6).ToString(),
            network.AddressB(AddressFamily.InterNetwork).ToString(), network.AddressB(AddressFamily.InterNetworkV6).ToString(),
            basePort.ToString(), peerPort.ToString(), accepting, halfCloseIpv6 ? "half-close" : "keep");
}
