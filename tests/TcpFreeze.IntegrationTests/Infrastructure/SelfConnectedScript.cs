namespace TcpFreeze.Tests.Infrastructure;

/// <summary>
/// A python3 process in a namespace of the test's own that listens on ADDRESS:PORT and connects to itself
/// PAIRS times (2 x PAIRS connections, both ends its own, and one listener), prints "connected" and holds
/// everything until stdin closes. The alarm ends it if the test forgets.
/// </summary>
public static class SelfConnectedScript
{
    private const string Script = """
        import signal, socket, sys
        signal.alarm(300)
        address, port, pairs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((address, port))
        listener.listen(pairs)
        held = []
        for _ in range(pairs):
            client = socket.create_connection((address, port), timeout=10)
            server, _ = listener.accept()
            held += [client, server]
        print('connected', flush=True)
        sys.stdin.read()
        """;

    public static ScriptProcess Start(string namespaceName, string address, int port, int pairs = 1)
        => ScriptProcess.Start(namespaceName, Script, address, port.ToString(), pairs.ToString());
}
