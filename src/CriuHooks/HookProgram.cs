namespace TcpFreeze.CriuHooks;

/// <summary>The entry point of the hook executable that CRIU runs as an action script.</summary>
public static class HookProgram
{
    /// <summary>Runs one CRIU action (from the environment) and returns the exit code.</summary>
    public static int Run(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Length > 0 && args[0] == DumpWatcher.Argument)
            return DumpWatcher.Run(args);
        if (args.Length > 0)
        {
            Console.Error.WriteLine("tcpfreeze-criu-hook takes no arguments: CRIU runs it as an action script, e.g.");
            Console.Error.WriteLine("  criu dump --tcp-established --network-lock skip --action-script /usr/local/bin/tcpfreeze-criu-hook ...");
            Console.Error.WriteLine($"Settings: {HookSettings.DefaultConfigPath} (lease-seconds, interfaces, pin-root, log-file) and TCPFREEZE_* variables.");
            return args[0] is "-h" or "--help" ? 0 : 2;
        }
        TextWriter log = Console.Error;
        try
        {
            CriuEnvironment environment = CriuEnvironment.FromProcess();
            CriuHookDispatcher dispatcher = CriuHookDispatcher.CreateTcpFreeze();
            if (!dispatcher.Actions.Contains(environment.Action))
                return 0; // a step TcpFreeze has nothing to do at: stay fast
            HookSettings settings = HookSettings.Load();
            if (settings.LogFile is not null)
                log = new TeeWriter(Console.Error, settings.LogFile);
            var context = new HookContext(settings, log, HookContext.FindCriuPid(), Environment.ProcessPath);
            return dispatcher.Dispatch(environment, context);
        }
        catch (FormatException e)
        {
            log.WriteLine($"tcpfreeze-hook: {e.Message}");
            return 1;
        }
        finally
        {
            log.Flush();
            if (log is TeeWriter tee)
                tee.Dispose();
        }
    }

    /// <summary>Writes each line to stderr (CRIU's log) and appends it to the configured log file.</summary>
    private sealed class TeeWriter(TextWriter first, string path) : TextWriter
    {
        private readonly StreamWriter _file = new(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite));

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
