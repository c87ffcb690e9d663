using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace TcpFreeze.Benchmarks;

/// <summary>
/// <c>--throughput</c>: what frozen connections cost the traffic that is not frozen. nginx
/// (Debian's, <c>user root</c>, one worker) serves a small static file in one namespace of a
/// veth pair, and bounded <c>wrk</c> runs load it from the other, while the server's
/// namespace holds N (3,000) frozen connections of other hosts under each method: CRIU's
/// iptables rules (2N, nft back-end and legacy), an nft set of N 4-tuples, TcpFreeze's map
/// with its XDP and TC programs, and nothing. Every run gets a fresh pair of namespaces, so
/// no method leaves tables or hooks behind for the next; methods are interleaved round by
/// round so drift on the shared machine hits them alike. The figure is requests/s, as a
/// ratio to no lock, median of the rounds.
/// </summary>
internal static partial class ThroughputComparison
{
    private const int Port = 8080;

    private sealed record Method(string Name, Action<BenchNetwork, ConnectionKey[]> Apply);

    private static readonly Method[] Methods =
    [
        new("no lock", (_, _) => { }),
        new("iptables, nft back-end: 2N CRIU rules", (net, keys) => ApplyIptables(net, keys, "iptables-restore", "iptables-save")),
        new("iptables-legacy: 2N CRIU rules", (net, keys) => ApplyIptables(net, keys, "iptables-legacy-restore", "iptables-legacy-save")),
        new("nft set of N 4-tuples", ApplyNftSet),
        new("TcpFreeze: N map entries (XDP + TC)", ApplyTcpFreeze),
    ];

    public static int Run(string[] args)
    {
        int frozen = Option(args, "--frozen", 3_000);
        int duration = Option(args, "--duration", 5);
        int rounds = Option(args, "--rounds", 3);
        int warmup = Option(args, "--warmup", 1);
        string output = OptionText(args, "--out") ?? Path.Combine("BenchmarkDotNet.Artifacts", "results", "throughput-comparison.md");
        if (frozen < 0 || duration is < 1 or > 30 || rounds is < 1 or > 10 || warmup is < 0 or > 10)
            throw new ArgumentException("bounds: --frozen >= 0, --duration 1..30 s, --rounds 1..10, --warmup 0..10 s");

        ConnectionKey[] keys = BenchNamespace.Keys(frozen);
        var results = Methods.ToDictionary(m => m, _ => new List<WrkResult>());
        for (int round = 1; round <= rounds; round++)
        {
            foreach (Method method in Methods)
            {
                WrkResult result = RunOnce(method, keys, duration, warmup);
                results[method].Add(result);
                Console.WriteLine($"// round {round}/{rounds}, {method.Name}: {result.RequestsPerSecond:N0} requests/s{result.ErrorNote}");
            }
        }

        string table = Table(results, frozen, duration, rounds);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
        File.WriteAllText(output, table);
        Console.WriteLine();
        Console.WriteLine(table);
        Console.WriteLine($"// written to {output}");
        return 0;
    }

    private static WrkResult RunOnce(Method method, ConnectionKey[] keys, int duration, int warmup)
    {
        using var network = new BenchNetwork();
        method.Apply(network, keys);
        using var nginx = Nginx.Start(network);
        if (warmup > 0)
            Wrk(network, warmup);
        return Wrk(network, duration);
    }

    private static void ApplyIptables(BenchNetwork network, ConnectionKey[] keys, string restore, string save)
    {
        network.Server.Exec(restore, ["-w", "--noflush"], CriuIptablesRules.RestoreInput("-I", keys));
        int rules = network.Server.Exec(save, ["-t", "filter"]).Split('\n').Count(l => l.EndsWith(" -j DROP", StringComparison.Ordinal));
        Require(rules == 2 * keys.Length, $"{restore}: {rules} DROP rules, expected {2 * keys.Length}");
    }

    private static void ApplyNftSet(BenchNetwork network, ConnectionKey[] keys)
    {
        var text = new StringBuilder("""
            table inet tfbench {
                set frozen { type ipv4_addr . inet_service . ipv4_addr . inet_service; }
                chain input { type filter hook input priority filter; policy accept; meta mark 0xc114 accept; ip daddr . tcp dport . ip saddr . tcp sport @frozen drop; }
                chain output { type filter hook output priority filter; policy accept; meta mark 0xc114 accept; ip saddr . tcp sport . ip daddr . tcp dport @frozen drop; }
            }

            """);
        if (keys.Length > 0)
            text.Append("add element inet tfbench frozen { ")
                .AppendJoin(", ", keys.Select(k => $"{k.Local.Address} . {k.Local.Port} . {k.Remote.Address} . {k.Remote.Port}"))
                .Append(" }\n");
        network.Server.Exec("nft", ["-f", "-"], text.ToString());
        int elements = Regex.Count(network.Server.Exec("nft", ["-j", "list", "set", "inet", "tfbench", "frozen"]), "\"concat\"");
        Require(elements == keys.Length, $"nft set: {elements} elements, expected {keys.Length}");
    }

    private static void ApplyTcpFreeze(BenchNetwork network, ConnectionKey[] keys)
    {
        // Attached and frozen until the network's Dispose detaches it (pins and programs).
        using TcpFreezer freezer = TcpFreezer.Attach(network.Server.Options);
        freezer.Freeze(keys, lease: Lease.Forever);
        int entries = freezer.ListConnections().Count;
        Require(entries == keys.Length, $"TcpFreeze: {entries} map entries, expected {keys.Length}");
        Require(freezer.AttachedInterfaces.Any(i => i.Name == BenchNetwork.Interface), $"TcpFreeze: not attached to {BenchNetwork.Interface}");
    }

    private static void Require(bool condition, string failure)
    {
        if (!condition)
            throw new InvalidOperationException(failure);
    }

    private sealed record WrkResult(double RequestsPerSecond, string Errors)
    {
        public string ErrorNote => Errors.Length == 0 ? "" : $" ({Errors})";
    }

    private static WrkResult Wrk(BenchNetwork network, int seconds)
    {
        string output = network.Client.Exec("wrk", ["-d", $"{seconds}s", "-t", "2", "-c", "50", "--timeout", "2s", $"http://{BenchNetwork.ServerAddress}:{Port}/"],
            timeout: TimeSpan.FromSeconds(seconds + 30));
        Match rate = RequestsPerSecondLine().Match(output);
        if (!rate.Success)
            throw new InvalidOperationException($"wrk printed no Requests/sec: {output}");
        string errors = string.Join("; ", output.Split('\n').Select(l => l.Trim())
            .Where(l => l.StartsWith("Socket errors", StringComparison.Ordinal) || l.StartsWith("Non-2xx", StringComparison.Ordinal)));
        return new WrkResult(double.Parse(rate.Groups[1].Value, CultureInfo.InvariantCulture), errors);
    }

    [GeneratedRegex(@"Requests/sec:\s+([0-9.]+)")]
    private static partial Regex RequestsPerSecondLine();

    private static string Table(Dictionary<Method, List<WrkResult>> results, int frozen, int duration, int rounds)
    {
        double none = Median(results[Methods[0]].Select(r => r.RequestsPerSecond));
        var text = new StringBuilder();
        text.AppendLine($"# Throughput of unfrozen traffic with {frozen:N0} frozen connections, {DateTime.UtcNow:yyyy-MM-dd}");
        text.AppendLine();
        text.AppendLine($"Machine: kernel {File.ReadAllText("/proc/sys/kernel/osrelease").Trim()}, {Environment.ProcessorCount} cores. "
            + $"nginx (one worker, a {Nginx.BodySize}-byte static file) in one namespace of a veth pair; "
            + $"`wrk -d {duration}s -t 2 -c 50` from the other; {rounds} round(s), methods interleaved, a fresh namespace pair per run. "
            + "The frozen connections belong to other hosts (198.18.0.0/16 to 198.19.0.0/16), so every request is checked against them and passes.");
        text.AppendLine();
        text.AppendLine("| method | requests/s (median) | runs | ratio to no lock | errors |");
        text.AppendLine("|---|---:|---|---:|---|");
        foreach (Method method in Methods)
        {
            List<WrkResult> runs = results[method];
            double median = Median(runs.Select(r => r.RequestsPerSecond));
            string errors = string.Join("; ", runs.Select(r => r.Errors).Where(e => e.Length > 0).Distinct());
            text.AppendLine($"| {method.Name} | {median:N0} | {string.Join(", ", runs.Select(r => r.RequestsPerSecond.ToString("N0", CultureInfo.InvariantCulture)))} "
                + $"| {(none > 0 ? (median / none).ToString("N2", CultureInfo.InvariantCulture) : "-")} | {(errors.Length == 0 ? "none" : errors)} |");
        }
        return text.ToString();
    }

    private static double Median(IEnumerable<double> values)
    {
        double[] sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private static int Option(string[] args, string name, int fallback)
        => OptionText(args, name) is { } text ? int.Parse(text, CultureInfo.InvariantCulture) : fallback;

    private static string? OptionText(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    /// <summary>nginx in the server namespace, stopped (master and workers, by PID) on dispose.</summary>
    private sealed class Nginx : IDisposable
    {
        public const int BodySize = 128;
        private readonly Process _master;
        private readonly string _directory;

        private Nginx(Process master, string directory)
        {
            _master = master;
            _directory = directory;
        }

        public static Nginx Start(BenchNetwork network)
        {
            string directory = Directory.CreateTempSubdirectory("tfbench-nginx-").FullName;
            Directory.CreateDirectory(Path.Combine(directory, "www"));
            File.WriteAllText(Path.Combine(directory, "www", "index.html"), new string('x', BodySize - 1) + "\n");
            string d = directory;
            File.WriteAllText(Path.Combine(directory, "nginx.conf"), $$"""
                user root;
                worker_processes 1;
                daemon off;
                pid {{d}}/nginx.pid;
                error_log {{d}}/error.log warn;
                events { worker_connections 1024; }
                http {
                    access_log off;
                    default_type text/html;
                    client_body_temp_path {{d}}/body;
                    proxy_temp_path {{d}}/proxy;
                    fastcgi_temp_path {{d}}/fastcgi;
                    uwsgi_temp_path {{d}}/uwsgi;
                    scgi_temp_path {{d}}/scgi;
                    server {
                        listen {{BenchNetwork.ServerAddress}}:{{Port}};
                        root {{d}}/www;
                    }
                }
                """);
            var info = new ProcessStartInfo("nsenter") { UseShellExecute = false, RedirectStandardError = true };
            foreach (string a in new[] { $"--net={network.Server.Path}", "nginx", "-p", directory, "-e", $"{directory}/error.log", "-c", $"{directory}/nginx.conf" })
                info.ArgumentList.Add(a);
            // nsenter with only --net execs nginx in place: this PID is nginx's master.
            var nginx = new Nginx(Process.Start(info)!, directory);
            try
            {
                nginx.WaitUntilServing(network);
                return nginx;
            }
            catch
            {
                nginx.Dispose();
                throw;
            }
        }

        private void WaitUntilServing(BenchNetwork network)
        {
            var deadline = Stopwatch.StartNew();
            while (deadline.Elapsed < TimeSpan.FromSeconds(10))
            {
                if (_master.HasExited)
                    throw new InvalidOperationException($"nginx exited with {_master.ExitCode}: {_master.StandardError.ReadToEnd()} {ReadLog()}");
                bool up = network.Client.Options.Namespace.Run(() =>
                {
                    using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    try
                    {
                        socket.Connect(IPAddress.Parse(BenchNetwork.ServerAddress), Port);
                        return true;
                    }
                    catch (SocketException)
                    {
                        return false;
                    }
                });
                if (up)
                    return;
                Thread.Sleep(50);
            }
            throw new TimeoutException($"nginx did not accept connections within 10 s: {ReadLog()}");
        }

        private string ReadLog()
        {
            string log = Path.Combine(_directory, "error.log");
            return File.Exists(log) ? File.ReadAllText(log) : "";
        }

        public void Dispose()
        {
            int[] workers = Children(_master.Id);
            if (!_master.HasExited)
            {
                Commands.Run("kill", ["-TERM", _master.Id.ToString(CultureInfo.InvariantCulture)]);
                if (!_master.WaitForExit(TimeSpan.FromSeconds(5)))
                    _master.Kill();
                _master.WaitForExit();
            }
            foreach (int worker in workers)
            {
                try
                {
                    using Process process = Process.GetProcessById(worker);
                    if (!process.WaitForExit(TimeSpan.FromSeconds(2)))
                        process.Kill();
                }
                catch (ArgumentException)
                {
                    // already gone
                }
            }
            _master.Dispose();
            Directory.Delete(_directory, recursive: true);
        }

        private static int[] Children(int pid)
        {
            string path = $"/proc/{pid}/task/{pid}/children";
            return File.Exists(path)
                ? File.ReadAllText(path).Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray()
                : [];
        }
    }
}

/// <summary>
/// Two network namespaces of the benchmark's own joined by a veth pair: the server
/// 198.18.254.1/24 and the client 198.18.254.2/24 (the benchmarking range). The frozen
/// connections' addresses (<see cref="BenchNamespace.Keys"/>) are outside this subnet.
/// </summary>
internal sealed class BenchNetwork : IDisposable
{
    public const string Interface = "veth0";
    public const string ServerAddress = "198.18.254.1";
    public const string ClientAddress = "198.18.254.2";

    public BenchNetwork()
    {
        Server = new BenchNamespace("tput-srv");
        try
        {
            Client = new BenchNamespace("tput-cli");
            BenchNamespace.Ip("link", "add", Interface, "netns", Server.Name, "type", "veth", "peer", "name", Interface, "netns", Client.Name);
            Configure(Server, ServerAddress);
            Configure(Client, ClientAddress);
        }
        catch
        {
            Client?.Dispose();
            Server.Dispose();
            throw;
        }
    }

    public BenchNamespace Server { get; }
    public BenchNamespace Client { get; } = null!;

    private static void Configure(BenchNamespace ns, string address)
    {
        BenchNamespace.Ip("-n", ns.Name, "addr", "add", $"{address}/24", "dev", Interface);
        BenchNamespace.Ip("-n", ns.Name, "link", "set", Interface, "up");
    }

    /// <summary>Removes both namespaces (the veth pair goes with them) and TcpFreeze's pins, if any.</summary>
    public void Dispose()
    {
        try
        {
            Server.Dispose();
        }
        finally
        {
            Client.Dispose();
        }
    }
}
