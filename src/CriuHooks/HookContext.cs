using Interop;
using Microsoft.Extensions.Logging;

namespace TcpFreeze.CriuHooks;

/// <summary>What a hook handler works with: settings, logging that reaches CRIU's log, and CRIU's PID.</summary>
public sealed class HookContext
{
    /// <summary>Creates a context that logs to <paramref name="log"/>, one "tcpfreeze-hook: " line per message.</summary>
    /// <param name="settings">The hook settings.</param>
    /// <param name="log">Where messages go (stderr, which CRIU writes into its log).</param>
    /// <param name="criuPid">The CRIU process that runs the hook.</param>
    /// <param name="executablePath">The hook executable (started again as the dump watcher).</param>
    public HookContext(HookSettings settings, TextWriter log, int criuPid, string? executablePath)
        : this(settings, new HookLoggerFactory(log), criuPid, executablePath)
    {
        Log = log;
    }

    /// <summary>Creates a context whose messages go to loggers of <paramref name="loggerFactory"/> (category <see cref="HookLoggerFactory.Category"/>).</summary>
    /// <param name="settings">The hook settings.</param>
    /// <param name="loggerFactory">Creates the hook's logger.</param>
    /// <param name="criuPid">The CRIU process that runs the hook.</param>
    /// <param name="executablePath">The hook executable (started again as the dump watcher).</param>
    public HookContext(HookSettings settings, ILoggerFactory loggerFactory, int criuPid, string? executablePath)
    {
        ArgumentNullException.ThrowIfNull(loggerFactory);
        Settings = settings;
        LoggerFactory = loggerFactory;
        Logger = loggerFactory.CreateLogger(HookLoggerFactory.Category);
        Log = new LoggerWriter(Logger);
        CriuPid = criuPid;
        ExecutablePath = executablePath;
    }

    /// <summary>The hook settings.</summary>
    public HookSettings Settings { get; }

    /// <summary>The factory of the hook's loggers.</summary>
    public ILoggerFactory LoggerFactory { get; }

    /// <summary>The hook's own logger (category <see cref="HookLoggerFactory.Category"/>); <see cref="Info"/> writes to it.</summary>
    public ILogger Logger { get; }

    /// <summary>
    /// A writer for code that wants one (each line becomes a message of <see cref="Logger"/>, or
    /// goes to the writer the context was created with); new code logs through <see cref="Info"/> or <see cref="Logger"/>.
    /// </summary>
    public TextWriter Log { get; }

    /// <summary>The CRIU process running the hook.</summary>
    public int CriuPid { get; }

    /// <summary>The hook executable, or null when embedded without one (no dump watcher then).</summary>
    public string? ExecutablePath { get; }

    /// <summary>
    /// Work that may wait until CRIU has the step's answer, run by the agent right after it sent it, each returning a line
    /// for the agent's log (null: the hook's
    /// own process, which does everything before it exits). Starting the dump watcher costs the agent about 1 ms
    /// (a process start from a process with many threads); the watcher copes with CRIU or the tasks ending before it runs.
    /// </summary>
    internal List<Func<string>>? AfterAnswer { get; init; }

    /// <summary>Logs one message at Information (a "tcpfreeze-hook: " line in CRIU's log with the hook's own factory).</summary>
    public void Info(string message) => Logger.LogLine(message);

    /// <summary>Turns what is written into it, line by line, into messages of a logger.</summary>
    private sealed class LoggerWriter(ILogger logger) : TextWriter
    {
        private readonly System.Text.StringBuilder _line = new();

        public override System.Text.Encoding Encoding => System.Text.Encoding.UTF8;

        public override void Write(char value)
        {
            lock (_line)
            {
                if (value == '\n')
                {
                    logger.LogLine(_line.ToString().TrimEnd('\r'));
                    _line.Clear();
                }
                else
                {
                    _line.Append(value);
                }
            }
        }
    }

    /// <summary>
    /// The CRIU process above the hook: CRIU may start scripts through a shell, so
    /// walk up past shells to the first ancestor named criu (at most a few levels).
    /// </summary>
    public static int FindCriuPid() => FindCriuPid(Environment.ProcessId);

    /// <summary>The CRIU process above the hook process <paramref name="hookPid"/> (see <see cref="FindCriuPid()"/>).</summary>
    public static int FindCriuPid(int hookPid)
    {
        int parent = hookPid == Environment.ProcessId ? Libc.getppid() : ParentOf(hookPid);
        int pid = parent;
        for (int level = 0; level < 4 && pid > 1; level++)
        {
            string? name = ReadComm(pid);
            if (name is "criu")
                return pid;
            if (name is not ("sh" or "dash" or "bash"))
                break;
            pid = ParentOf(pid);
        }
        return parent;
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
