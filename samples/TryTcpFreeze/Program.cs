// Try TcpFreeze in five minutes: a TCP connection over the loopback of a network namespace of your own is frozen
// (nothing gets through, both ends stay connected) and thawed (everything arrives). Never the host's interfaces.
// As root:  ip netns add tcpfreeze-try && ip -n tcpfreeze-try link set lo up && dotnet run
// Then:     ip netns delete tcpfreeze-try
using System.Net;
using System.Net.Sockets;
using System.Text;
using TcpFreeze;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")] // TcpFreeze is Linux-only (CA1416)

string name = args.Length > 0 ? args[0] : "tcpfreeze-try";
var options = new FreezerOptions
{
    Namespace = NetworkNamespace.Named(name),   // /run/netns/NAME, as `ip netns add` made it
    PinRoot = $"/sys/fs/bpf/{name}",            // pins of its own, apart from any other TcpFreeze user
};

// A socket belongs to the namespace it was opened in, whichever thread uses it later: open both ends in there.
using Socket listener = options.Namespace.OpenSocket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
listener.Listen();
Socket client = options.Namespace.OpenSocket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
client.Connect(listener.LocalEndPoint!);
Socket server = listener.Accept();

using (client)
using (server)
using (TcpFreezer freezer = TcpFreezer.Attach(options))   // loads, pins and attaches to the namespace's interfaces
{
    try
    {
        // The connection as the client's side sees it; one entry freezes both directions.
        var key = new ConnectionKey((IPEndPoint)client.LocalEndPoint!, (IPEndPoint)client.RemoteEndPoint!);
        freezer.Freeze([key], lease: TimeSpan.FromSeconds(30));
        client.Send("hello"u8);
        bool arrived = server.Poll(TimeSpan.FromSeconds(1), SelectMode.SelectRead);
        Console.WriteLine($"frozen {key}: {(arrived ? "data arrived (unexpected)" : "nothing arrives for 1 s")}");

        freezer.Thaw([key]);                                 // the resume kick makes the client retransmit at once
        server.ReceiveTimeout = 10_000;
        var buffer = new byte[5];
        int received = server.Receive(buffer);
        string text = Encoding.ASCII.GetString(buffer, 0, received);
        Console.WriteLine($"thawed: the server received '{text}'");
        return !arrived && text == "hello" ? 0 : 1;
    }
    finally
    {
        TcpFreezer.Detach(options);                          // programs, filters and pins removed
    }
}
