// TcpFreeze live demo: two network namespaces of the demo's own joined by a veth pair
// (198.18.100.0/24 and 2001:db8:100::/64 only), N live TCP connections with traffic,
// frozen in one batch, held silent, thawed, and checked byte for byte.
// Run as root: bash scripts/demo.sh   (or: dotnet run -c Release --project demo/TcpFreeze.Demo -- [connections])
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using TcpFreeze;

int connections = args.Length > 0 && int.TryParse(args[0], out int n) && n is > 0 and <= 5000 ? n : 500;
string? hook = args.SkipWhile(a => a != "--hook").Skip(1).FirstOrDefault();
string client = $"tfdemo{Environment.ProcessId}c", server = $"tfdemo{Environment.ProcessId}s";
string pinRoot = $"/sys/fs/bpf/tcpfreeze-demo-{Environment.ProcessId}";
var options = new FreezerOptions { PinRoot = pinRoot, Namespace = NetworkNamespace.Named(server) };
var pairs = new List<(Socket Client, Socket Server)>();
var listeners = new List<Socket>();

try
{
    Step($"Creating namespaces {client} and {server} joined by a veth pair");
    Ip("netns", "add", client);
    Ip("netns", "add", server);
    Ip("link", "add", "veth0", "netns", client, "type", "veth", "peer", "name", "veth0", "netns", server);
    foreach ((string ns, int host) in new[] { (client, 1), (server, 2) })
    {
        Ip("-n", ns, "link", "set", "lo", "up");
        Ip("-n", ns, "addr", "add", $"198.18.100.{host}/24", "dev", "veth0");
        Ip("-n", ns, "addr", "add", $"2001:db8:100::{host}/64", "dev", "veth0", "nodad");
        Ip("-n", ns, "link", "set", "veth0", "up");
    }

    Step($"Opening {connections} TCP connections (half IPv4, half IPv6) from {client} to a server in {server}");
    var v4 = new IPEndPoint(IPAddress.Parse("198.18.100.2"), 8080);
    var v6 = new IPEndPoint(IPAddress.Parse("2001:db8:100::2"), 8080);
    foreach (IPEndPoint endpoint in new[] { v4, v6 })
    {
        Socket l = NetworkNamespace.Named(server).OpenSocket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        l.Bind(endpoint);
        l.Listen(connections);
        listeners.Add(l);
    }
    for (int i = 0; i < connections; i++)
    {
        IPEndPoint target = i % 2 == 0 ? v4 : v6;
        Socket c = NetworkNamespace.Named(client).OpenSocket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        c.NoDelay = true;
        c.Connect(target);
        pairs.Add((c, listeners[i % 2].Accept()));
    }
    Console.WriteLine($"   {pairs.Count} connections established");

    Step($"Attaching TcpFreeze in {server} (XDP ingress + TC egress, pins under {pinRoot})");
    var watch = Stopwatch.StartNew();
    using TcpFreezer freezer = TcpFreezer.Attach(options);
    Console.WriteLine($"   attached in {watch.Elapsed.TotalMilliseconds:F1} ms to: {string.Join(", ", freezer.AttachedInterfaces.Select(i => $"{i.Name} ({i.XdpMode} XDP)"))}");

    ConnectionKey[] keys = pairs.Select(p => new ConnectionKey((IPEndPoint)p.Server.LocalEndPoint!, (IPEndPoint)p.Server.RemoteEndPoint!)).ToArray();
    var listenerKeys = new[] { new EndpointKey(v4), new EndpointKey(v6) };
    Step("Freezing the listeners and every connection in one batch");
    watch.Restart();
    FreezeResult frozen = freezer.Freeze(keys, listenerKeys, lease: TimeSpan.FromMinutes(2));
    double freezeMs = watch.Elapsed.TotalMilliseconds;
    Console.WriteLine($"   froze {frozen.ConnectionsFrozen} connections and {frozen.EndpointsFrozen} listeners in {freezeMs:F2} ms (lease 2 min)");

    Step("Both sides write while frozen; nothing may arrive");
    for (int i = 0; i < pairs.Count; i++)
    {
        pairs[i].Client.Send(Encoding.ASCII.GetBytes($"request {i:D5};"));
        pairs[i].Server.Send(Encoding.ASCII.GetBytes($"reply {i:D5};"));
    }
    Thread.Sleep(TimeSpan.FromSeconds(2)); // the demo shows a 2-second silence on purpose
    int arrived = pairs.Count(p => p.Server.Available > 0 || p.Client.Available > 0);
    int established = pairs.Count(p => State(p.Client) == 1 && State(p.Server) == 1);
    FreezerStatistics stats = freezer.GetStatistics();
    Console.WriteLine($"   after 2 s: {arrived} connections received anything, {established}/{pairs.Count} still ESTABLISHED on both ends");
    Console.WriteLine($"   kernel counters: {stats.DroppedIngress} packets dropped at ingress, {stats.DroppedEgress} at egress");

    Step("Thawing everything in one batch");
    watch.Restart();
    ThawResult thawed = freezer.Thaw(keys, listenerKeys);
    double thawMs = watch.Elapsed.TotalMilliseconds;
    Console.WriteLine($"   thawed {thawed.ConnectionsThawed} connections and {thawed.EndpointsThawed} listeners in {thawMs:F2} ms");

    watch.Restart();
    int complete = 0;
    var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
    for (int i = 0; i < pairs.Count; i++)
    {
        bool ok = Expect(pairs[i].Server, $"request {i:D5};", deadline) && Expect(pairs[i].Client, $"reply {i:D5};", deadline);
        complete += ok ? 1 : 0;
    }
    Console.WriteLine($"   {complete}/{pairs.Count} connections delivered every byte, in order, exactly once, within {watch.Elapsed.TotalSeconds:F1} s of the thaw");
    Console.WriteLine("   (the wait is TCP's retransmission back-off, not TcpFreeze: the thaw itself took the time above)");

    Step("Cost of freezing at scale: 100,000 synthetic connections, one batch each way");
    ConnectionKey[] many = Enumerable.Range(0, 100_000)
        .Select(i => ConnectionKey.Parse($"198.18.{i / 60000}.1:{1 + i % 60000}", $"198.19.{i / 250 % 256}.{1 + i % 250}:40000")).ToArray();
    watch.Restart();
    freezer.Freeze(many);
    double manyFreeze = watch.Elapsed.TotalMilliseconds;
    watch.Restart();
    freezer.Thaw(many);
    Console.WriteLine($"   freeze {manyFreeze:F1} ms, thaw {watch.Elapsed.TotalMilliseconds:F1} ms");

    Console.WriteLine();
    Console.WriteLine("| figure | value |");
    Console.WriteLine("|---|---|");
    Console.WriteLine($"| connections frozen and thawed | {pairs.Count} |");
    Console.WriteLine($"| freeze (one batch, incl. 2 listeners) | {freezeMs:F2} ms |");
    Console.WriteLine($"| thaw (one batch) | {thawMs:F2} ms |");
    Console.WriteLine($"| connections intact after thaw | {complete}/{pairs.Count} |");
    Console.WriteLine($"| connections that received data while frozen | {arrived} |");
    Console.WriteLine($"| 100,000 keys: freeze / thaw | {manyFreeze:F1} ms / {watch.Elapsed.TotalMilliseconds:F1} ms |");
    bool freezeOk = complete == pairs.Count && arrived == 0;
    if (hook is null)
    {
        Console.WriteLine("\n(no --hook PATH given: skipping the CRIU migration part; scripts/demo.sh passes it)");
        return freezeOk ? 0 : 1;
    }
    var migrations = await TcpFreeze.Demo.MigrationDemo.RunAsync(hook, connections);
    Console.WriteLine();
    Console.WriteLine("| CRIU migration | connections intact | downtime |");
    Console.WriteLine("|---|---|---|");
    foreach ((string method, int survived, int total, TimeSpan downtime) in migrations)
        Console.WriteLine($"| {method} | {survived}/{total} | {downtime.TotalMilliseconds:F0} ms |");
    Console.WriteLine("(CRIU's default iptables lock keeps every connection too, but takes tens of seconds at this size: see benchmarks/)");
    return freezeOk && migrations.Skip(1).All(m => m.Survived == m.Total) ? 0 : 1; // both hook runs keep every connection
}
catch (Exception e) when (e is TcpFreezeException or TcpFreeze.Ebpf.Interop.BpfException)
{
    Console.Error.WriteLine($"demo: {e.Message}");
    return 1;
}
finally
{
    foreach ((Socket c, Socket s) in pairs)
    {
        c.Dispose();
        s.Dispose();
    }
    listeners.ForEach(l => l.Dispose());
    try
    {
        if (Directory.Exists(pinRoot))
        {
            TcpFreezer.Detach(options);
            Directory.Delete(pinRoot, recursive: true);
        }
    }
    finally
    {
        Process.Start("ip", ["netns", "del", client])?.WaitForExit();
        Process.Start("ip", ["netns", "del", server])?.WaitForExit();
    }
}

static void Step(string text) => Console.WriteLine($"\n== {text}");

static void Ip(params string[] arguments)
{
    var info = new ProcessStartInfo("ip") { RedirectStandardError = true };
    foreach (string a in arguments)
        info.ArgumentList.Add(a);
    using Process p = Process.Start(info)!;
    p.WaitForExit();
    if (p.ExitCode != 0)
        throw new InvalidOperationException($"ip {string.Join(' ', arguments)}: {p.StandardError.ReadToEnd().Trim()}");
}

static int State(Socket socket)
{
    Span<byte> info = stackalloc byte[8];
    socket.GetRawSocketOption(6, 11, info); // TCP_INFO: tcpi_state
    return info[0];
}

static bool Expect(Socket socket, string text, DateTime deadline)
{
    var buffer = new byte[text.Length];
    int read = 0;
    while (read < buffer.Length)
    {
        TimeSpan left = deadline - DateTime.UtcNow;
        if (left <= TimeSpan.Zero || !socket.Poll(left, SelectMode.SelectRead))
            return false;
        int got = socket.Receive(buffer, read, buffer.Length - read, SocketFlags.None);
        if (got == 0)
            return false;
        read += got;
    }
    return Encoding.ASCII.GetString(buffer) == text && socket.Available == 0;
}
