using TcpFreeze.Ebpf.Interop;
using Interop;
using Microsoft.Win32.SafeHandles;
using Microsoft.Extensions.Logging;

namespace TcpFreeze.CriuHooks;

/// <summary>The entry point of the hook executable that CRIU runs as an action script.</summary>
internal static class HookProgram
{
    /// <summary>Runs one CRIU action (from the environment), the dump watcher or the agent, and returns the exit code.</summary>
    public static int Run(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Length > 0 && args[0] == DumpWatcher.Argument)
            return DumpWatcher.Run(args);
        if (args.Length > 0 && args[0] == HookAgent.Argument)
            return HookAgent.Run(args);
        if (args.Length > 0 && args[0] == RestoreWatcher.Argument)
            return RestoreWatcher.Run(args);
        if (args.Length > 0)
        {
            Console.Error.WriteLine("tcpfreeze-criu-hook takes no arguments: CRIU runs it as an action script, e.g.");
            Console.Error.WriteLine("  criu dump --tcp-established --network-lock skip --action-script /usr/local/bin/tcpfreeze-criu-hook ...");
            Console.Error.WriteLine("or with those options in CRIU's configuration: 'tcpfreeze criu-config --write' puts them there.");
            Console.Error.WriteLine($"Settings: {HookSettings.DefaultConfigPath} ({HookSettings.KnownKeys}) and TCPFREEZE_* variables.");
            Console.Error.WriteLine($"Agent: 'tcpfreeze-criu-hook {HookAgent.Argument} [SOCKET]' keeps the hook loaded and takes each step over {HookAgent.DefaultSocketPath}");
            Console.Error.WriteLine("(TCPFREEZE_AGENT_SOCKET names another; empty: never use one), so that a step costs a connection instead of a process start.");
            return args[0] is "-h" or "--help" ? 0 : 2;
        }
        return RunStep(Environment.GetEnvironmentVariable, HookContext.FindCriuPid(Environment.ProcessId), Console.Error, ownsProcess: true);
    }

    /// <summary>
    /// Runs one CRIU step: the hook's process does it for itself (<paramref name="ownsProcess"/>), the agent for
    /// a front end (then libbpf's process-wide message callback is left to the agent).
    /// </summary>
    /// <param name="environment">The step's variables (CRTOOLS_*, TCPFREEZE_*).</param>
    /// <param name="criuPid">The CRIU process whose step this is.</param>
    /// <param name="stderr">Where the lines for CRIU's log go.</param>
    /// <param name="ownsProcess">True in the hook's own process.</param>
    /// <param name="afterAnswer">The agent's list of work to do once CRIU has the answer (see <see cref="HookContext.AfterAnswer"/>).</param>
    internal static int RunStep(Func<string, string?> environment, int criuPid, TextWriter stderr, bool ownsProcess, List<Func<string>>? afterAnswer = null)
    {
        TextWriter log = stderr;
        var loggers = new HookLoggerFactory(log);
        string step = "the hook";
        try
        {
            CriuEnvironment criu = CriuEnvironment.Parse(new Dictionary<string, string?>
            {
                ["CRTOOLS_SCRIPT_ACTION"] = environment("CRTOOLS_SCRIPT_ACTION"),
                ["CRTOOLS_IMAGE_DIR"] = environment("CRTOOLS_IMAGE_DIR"),
                ["CRTOOLS_INIT_PID"] = environment("CRTOOLS_INIT_PID"),
            });
            step = criu.ActionName;
            CriuHookDispatcher dispatcher = CriuHookDispatcher.CreateTcpFreeze();
            if (!dispatcher.Actions.Contains(criu.Action))
                return 0; // a step TcpFreeze has nothing to do at: stay fast
            HookSettings settings = HookSettings.Load(environment);
            if (settings.LogFile is not null)
            {
                log = TeeWriter.TryOpen(loggers, stderr, settings.LogFile);
                loggers = new HookLoggerFactory(log);
            }
            // This process is the hook's alone: libbpf's messages (the TcpFreezers here have no logger of their own) go to its log too.
            if (ownsProcess)
                LibbpfLog.SetLogger(loggers.CreateLogger(LibbpfLog.Category));
            var context = new HookContext(settings, loggers, criuPid, Environment.ProcessPath) { AfterAnswer = afterAnswer };
            return dispatcher.Dispatch(criu, context);
        }
        catch (Exception e) when (e is FormatException or IOException or UnauthorizedAccessException)
        {
            // The environment or the settings file: nothing was done yet.
            loggers.CreateLogger(HookLoggerFactory.Category).LogLine(e.Message);
            return 1;
        }
        catch (Exception e)
        {
            // A bug of ours. CRIU must still get a non-zero exit and one readable line,
            // not an abort with a stack trace.
            loggers.CreateLogger(HookLoggerFactory.Category).LogLine($"{step} failed: unexpected {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}");
            return 1;
        }
        finally
        {
            if (ownsProcess)
                LibbpfLog.SetLogger(null);
            log.Flush();
            if (log is TeeWriter tee)
                tee.Dispose();
        }
    }

    /// <summary>Writes each line to stderr (CRIU's log) and appends it to the configured log file.</summary>
    private sealed class TeeWriter(TextWriter first, StreamWriter file) : TextWriter
    {
        private readonly StreamWriter _file = file;

        /// <summary>
        /// The tee, or just <paramref name="first"/> (with a line saying why) when the file cannot be
        /// opened: a missing log folder must not fail a migration. A log file someone else could have
        /// chosen or planted (<see cref="TrustedFile.OpenForAppend"/>: a folder on its path that another
        /// user can change, a link, a FIFO) is refused instead: the hook runs as root and would append
        /// to whatever that user points it at.
        /// </summary>
        /// <exception cref="IOException">The log file was refused; the message names it, what is wrong and what to do.</exception>
        public static TextWriter TryOpen(HookLoggerFactory loggers, TextWriter first, string path)
        {
            FileDescriptorHandle descriptor;
            try
            {
                descriptor = TrustedFile.OpenForAppend(path, "the log file");
            }
            catch (FileRefusedException e) when (e.Reason is FileRefusal.Missing or FileRefusal.OpenFailed)
            {
                loggers.CreateLogger(HookLoggerFactory.Category).LogLine($"{e.Message}; logging to CRIU's log only");
                return first;
            }
            catch (FileRefusedException e)
            {
                throw new IOException($"refused, the hook did nothing: {e.Message}", e);
            }
            // The FileStream takes the descriptor over; the handle that opened it lets go without closing it.
            var file = new SafeFileHandle(descriptor.DangerousGetHandle(), ownsHandle: true);
            descriptor.SetHandleAsInvalid();
            return new TeeWriter(first, new StreamWriter(new FileStream(file, FileAccess.Write, 1)));
        }

        public override System.Text.Encoding Encoding => first.Encoding;

        public override void Write(char value)
        {
            first.Write(value);
            _file.Write(value);
        }

        public override void WriteLine(string? value)
        {
            first.WriteLine(value);
            _file.WriteLine($"{DateTime.UtcNow:O} {value}");
        }

        public override void Flush()
        {
            first.Flush();
            _file.Flush();
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                _file.Dispose();
            base.Dispose(disposing);
        }
    }
}
