using Interop;

namespace TcpFreeze.CriuHooks;

/// <summary>What a hook handler works with: settings, a log that reaches CRIU's log, and CRIU's PID.</summary>
public sealed class HookContext
{
    /// <summary>Creates a context.</summary>
    /// <param name="settings">The hook settings.</param>
    /// <param name="log">Where messages go (stderr, which CRIU writes into its log).</param>
    /// <param name="criuPid">The CRIU process that runs the hook.</param>
    /// <param name="executablePath">The hook executable (started again as the dump watcher).</param>
    public HookContext(HookSettings settings, TextWriter log, int criuPid, string? executablePath)
    {
        Settings = settings;
        Log = log;
        CriuPid = criuPid;
        ExecutablePath = executablePath;
    }

    /// <summary>The hook settings.</summary>
    public HookSettings Settings { get; }

    /// <summary>Where messages go.</summary>
    public TextWriter Log { get; }

    /// <summary>The CRIU process running the hook.</summary>
    public int CriuPid { get; }

    /// <summary>The hook executable, or null when embedded without one (no dump watcher then).</summary>
    public string? ExecutablePath { get; }

    /// <summary>Writes one line, prefixed so it is easy to find in CRIU's log.</summary>
    public void Info(string message) => Log.WriteLine($"tcpfreeze-hook: {message}");

    /// <summary>
    /// The CRIU process above the hook: CRIU may start scripts through a shell, so
    /// walk up past shells to the first ancestor named criu (at most a few levels).
    /// </summary>
    public static int FindCriuPid()
    {
        int pid = Libc.getppid();
        for (int level = 0; level < 4 && pid > 1; level++)
        {
            string? name = ReadComm(pid);
            if (name is "criu")
                return pid;
            if (name is not ("sh" or "dash" or "bash"))
                break;
            pid = ParentOf(pid);
        }
        return Libc.getppid();
    }

    private static string? ReadComm(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/comm").Trim();
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static int ParentOf(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return int.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or FormatException or IndexOutOfRangeException)
        {
            return 0;
        }
    }
}
