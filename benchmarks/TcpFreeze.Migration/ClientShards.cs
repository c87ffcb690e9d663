using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using TcpFreeze.Tests.Criu;

namespace TcpFreeze.Migration;

/// <summary>
/// The keep-alive clients of a run with more connections than one process may hold descriptors for (this machine
/// caps every process at 20,000, hard): the first <see cref="PerProcess"/> in this process (<see cref="Local"/>,
/// which the resume lag is measured on), the rest in worker processes of this program (<c>--client-worker</c>), each
/// with up to <see cref="PerProcess"/>. A worker answers "status" with every connection's replies, failure and
/// longest gap on one line, so the run judges every connection the same way wherever it lives.
/// </summary>
internal sealed class ClientShards : IDisposable
{
    /// <summary>Connections per process: far enough below the descriptor cap for the process's own files.</summary>
    public const int PerProcess = 10_000;

    /// <summary>The option that starts a worker: <c>--client-worker NETNS ADDRESS:PORT COUNT PAUSE_MS</c>.</summary>
    public const string WorkerOption = "--client-worker";

    private readonly List<Worker> _workers;

    private ClientShards(ClientLoad local, List<Worker> workers) => (Local, _workers) = (local, workers);

    /// <summary>This process's share of the clients.</summary>
    public ClientLoad Local { get; }

    /// <summary>All connections, in every process.</summary>
    public int Count => Local.Connections.Count + _workers.Sum(w => w.Count);

    /// <summary>Whether any connection lives in a worker process.</summary>
    public bool HasWorkers => _workers.Count > 0;

    /// <summary>One connection's state, as <see cref="Status"/> reports it.</summary>
    public readonly record struct ConnectionStatus(long Replies, bool Failed, long LongestGapTicks);

    /// <summary>Opens <paramref name="connections"/> HTTP keep-alive clients of <paramref name="endpoint"/> from namespace <paramref name="network"/>'s A side.</summary>
    public static ClientShards Http(string namespaceName, IPEndPoint endpoint, int connections, TimeSpan pause)
    {
        var workers = new List<Worker>();
        try
        {
            for (int start = PerProcess; start < connections; start += PerProcess)
                workers.Add(Worker.Start(namespaceName, endpoint, Math.Min(PerProcess, connections - start), pause));
            ClientLoad local = ClientLoad.Http(NetworkNamespace.Named(namespaceName), endpoint, Math.Min(PerProcess, connections), pause, staggered: true);
            foreach (Worker worker in workers)
                worker.WaitReady();
            return new ClientShards(local, workers);
        }
        catch
        {
            foreach (Worker worker in workers)
                worker.Dispose();
            throw;
        }
    }

    /// <summary>Every connection's state: this process's first, then each worker's.</summary>
    public ConnectionStatus[] Status()
    {
        var all = new List<ConnectionStatus>(Count);
        all.AddRange(Local.Connections.Select(c => new ConnectionStatus(Interlocked.Read(ref c.Replies), c.Failure is not null, Interlocked.Read(ref c.LongestGapTicks))));
        foreach (Worker worker in _workers)
            all.AddRange(worker.Status());
        return [.. all];
    }

    /// <summary>Waits until every connection has at least <paramref name="minimum"/> replies; false at the timeout or when one failed.</summary>
    public bool WaitForProgress(long minimum, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            ConnectionStatus[] status = Status();
            if (status.Any(s => s.Failed))
                return false;
            if (status.All(s => s.Replies >= minimum))
                return true;
            if (clock.Elapsed > timeout)
                return false;
            Thread.Sleep(200);
        }
    }

    /// <summary>Starts every connection's longest-gap measure afresh.</summary>
    public void ResetLongestGaps()
    {
        Local.ResetLongestGaps();
        foreach (Worker worker in _workers)
            worker.Ask("reset");
    }

    public void Dispose()
    {
        foreach (Worker worker in _workers)
            worker.Dispose();
        Local.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(20));
    }

    /// <summary>
    /// The worker's side: opens the clients, says "ready", then answers "status" and "reset" lines on stdin until
    /// "stop" or the end of input (the parent went away).
    /// </summary>
    public static int RunWorker(string[] args)
    {
        if (args.Length != 5 || !IPEndPoint.TryParse(args[2], out IPEndPoint? endpoint)
            || !int.TryParse(args[3], NumberStyles.None, CultureInfo.InvariantCulture, out int count)
            || !int.TryParse(args[4], NumberStyles.None, CultureInfo.InvariantCulture, out int pauseMs))
        {
            Console.Error.WriteLine($"usage: {WorkerOption} NETNS ADDRESS:PORT COUNT PAUSE_MS");
            return 2;
        }
        ClientLoad load = ClientLoad.Http(NetworkNamespace.Named(args[1]), endpoint, count, TimeSpan.FromMilliseconds(pauseMs), staggered: true);
        Console.Out.WriteLine("ready");
        Console.Out.Flush();
        for (string? line; (line = Console.In.ReadLine()) is not null && line != "stop";)
        {
            if (line == "reset")
            {
                load.ResetLongestGaps();
                Console.Out.WriteLine("ok");
            }
            else if (line == "status")
            {
                var text = new StringBuilder(count * 16);
                foreach (ClientLoad.Connection c in load.Connections)
                    text.Append(CultureInfo.InvariantCulture, $"{Interlocked.Read(ref c.Replies)},{(c.Failure is null ? 0 : 1)},{Interlocked.Read(ref c.LongestGapTicks)};");
                Console.Out.WriteLine(text.ToString());
            }
            else
            {
                Console.Out.WriteLine($"unknown request '{line}'");
            }
            Console.Out.Flush();
        }
        load.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(20));
        return 0;
    }

    /// <summary>A worker process and its line protocol.</summary>
    private sealed class Worker : IDisposable
    {
        private static readonly TimeSpan ReadyBound = TimeSpan.FromMinutes(2);
        private readonly Process _process;

        private Worker(Process process, int count) => (_process, Count) = (process, count);

        public int Count { get; }

        public static Worker Start(string namespaceName, IPEndPoint endpoint, int count, TimeSpan pause)
        {
            // This program again (the apphost, or dotnet with the assembly).
            string self = Environment.ProcessPath ?? throw new InvalidOperationException("the benchmark's own path is unknown");
            var start = new ProcessStartInfo(self)
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = false,
                UseShellExecute = false,
            };
            if (Path.GetFileNameWithoutExtension(self) == "dotnet")
                start.ArgumentList.Add(typeof(ClientShards).Assembly.Location);
            foreach (string arg in new[] { WorkerOption, namespaceName, endpoint.ToString(), count.ToString(CultureInfo.InvariantCulture),
                         ((int)pause.TotalMilliseconds).ToString(CultureInfo.InvariantCulture) })
                start.ArgumentList.Add(arg);
            Process process = Process.Start(start) ?? throw new InvalidOperationException("the client worker did not start");
            return new Worker(process, count);
        }

        public void WaitReady()
        {
            Task<string?> line = _process.StandardOutput.ReadLineAsync();
            if (!line.Wait(ReadyBound) || line.Result != "ready")
                throw new InvalidOperationException($"a client worker did not open its {Count} connections within {ReadyBound.TotalSeconds:F0} s ({line.Status}: {(line.IsCompletedSuccessfully ? line.Result : "no answer")})");
        }

        public string Ask(string request)
        {
            _process.StandardInput.WriteLine(request);
            _process.StandardInput.Flush();
            Task<string?> line = _process.StandardOutput.ReadLineAsync();
            if (!line.Wait(TimeSpan.FromSeconds(30)) || line.Result is null)
                throw new InvalidOperationException($"a client worker (PID {_process.Id}) did not answer '{request}'");
            return line.Result;
        }

        public IEnumerable<ConnectionStatus> Status()
        {
            string line = Ask("status");
            foreach (string item in line.Split(';', StringSplitOptions.RemoveEmptyEntries))
            {
                string[] parts = item.Split(',');
                yield return new ConnectionStatus(long.Parse(parts[0], CultureInfo.InvariantCulture), parts[1] == "1", long.Parse(parts[2], CultureInfo.InvariantCulture));
            }
        }

        public void Dispose()
        {
            try
            {
                if (!_process.HasExited)
                {
                    _process.StandardInput.WriteLine("stop");
                    _process.StandardInput.Flush();
                    if (!_process.WaitForExit(TimeSpan.FromSeconds(30)))
                        _process.Kill(); // this PID only
                }
            }
            catch (Exception e) when (e is IOException or InvalidOperationException)
            {
            }
            _process.Dispose();
        }
    }
}
