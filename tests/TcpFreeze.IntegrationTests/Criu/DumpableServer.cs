using System.Diagnostics;

namespace TcpFreeze.Tests.Criu;

/// <summary>
/// A server process CRIU can dump: started in a test namespace by a small python
/// reaper (a child subreaper, so the dumped PID is reaped at once and can be restored),
/// as its own session leader with stdio on /dev/null and a log file. Disposing kills
/// the server by PID (wherever the restore put it) and ends the reaper.
/// </summary>
public sealed class DumpableServer : IDisposable
{
    private const string Reaper = """
        import ctypes, os, select, sys
        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
        log, argv = sys.argv[1], sys.argv[2:]
        child = os.fork()
        if child == 0:
            os.setsid()
            null = os.open('/dev/null', os.O_RDWR)
            out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(null, 0); os.dup2(out, 1); os.dup2(out, 2)
            os.execvp(argv[0], argv)
        print(child, flush=True)
        while True:
            ready, _, _ = select.select([sys.stdin], [], [], 0.01)
            try:
                while os.waitpid(-1, os.WNOHANG)[0] > 0:
                    pass
            except ChildProcessError:
                pass
            if ready and not sys.stdin.read(1):
                break
        """;

    private readonly Process _reaper;

    private DumpableServer(Process reaper, int pid, string log)
    {
        _reaper = reaper;
        Pid = pid;
        LogFile = log;
    }

    public int Pid { get; }
    public string LogFile { get; }

    /// <summary>Starts <paramref name="command"/> in namespace <paramref name="ns"/> (through nsenter, which execs it).</summary>
    public static DumpableServer Start(string ns, string workDirectory, params string[] command)
    {
        string log = Path.Combine(workDirectory, "server.log");
        var info = new ProcessStartInfo("python3") { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false, WorkingDirectory = workDirectory };
        foreach (string a in new[] { "-c", Reaper, log, "nsenter", $"--net=/run/netns/{ns}" }.Concat(command))
            info.ArgumentList.Add(a);
        Process reaper = Process.Start(info) ?? throw new InvalidOperationException("could not start the reaper");
        Task<string?> line = reaper.StandardOutput.ReadLineAsync();
        if (!line.Wait(TimeSpan.FromSeconds(10)) || !int.TryParse(line.Result, out int pid))
        {
            reaper.Kill();
            throw new InvalidOperationException("the reaper did not report the server's PID");
        }
        return new DumpableServer(reaper, pid, log);
    }

    public bool IsRunning => IsAlive(Pid);

    /// <summary>Whether <paramref name="pid"/> is a live (not zombie) process.</summary>
    public static bool IsAlive(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            char state = stat[stat.LastIndexOf(')') + 2];
            return state is not ('Z' or 'X');
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Waits until the PID is free (CRIU killed the server and the reaper reaped it).</summary>
    public bool WaitUntilGone(TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            if (!Directory.Exists($"/proc/{Pid}"))
                return true;
            Thread.Sleep(10);
        }
        return false;
    }

    public string Log => File.Exists(LogFile) ? File.ReadAllText(LogFile) : "";

    public void Dispose()
    {
        foreach (int pid in DescendantsAndSelf(Pid))
            try
            {
                Process.GetProcessById(pid).Kill();
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
            {
                // gone already
            }
        try
        {
            _reaper.StandardInput.Close();
            if (!_reaper.WaitForExit(5000))
                _reaper.Kill();
        }
        catch (InvalidOperationException)
        {
        }
        _reaper.Dispose();
    }

    /// <summary>The PID and its descendants (nginx workers), read from /proc.</summary>
    private static List<int> DescendantsAndSelf(int root)
    {
        var children = new Dictionary<int, List<int>>();
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid))
                continue;
            try
            {
                string stat = File.ReadAllText(Path.Combine(dir, "stat"));
                int parent = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1]);
                if (!children.TryGetValue(parent, out List<int>? list))
                    children[parent] = list = [];
                list.Add(pid);
            }
            catch (Exception e) when (e is IOException or FormatException)
            {
            }
        }
        var result = new List<int>();
        var queue = new Queue<int>([root]);
        while (queue.Count > 0 && result.Count < 1000)
        {
            int pid = queue.Dequeue();
            if (!Directory.Exists($"/proc/{pid}"))
                continue;
            result.Add(pid);
            foreach (int child in children.GetValueOrDefault(pid) ?? [])
                queue.Enqueue(child);
        }
        return result;
    }
}
