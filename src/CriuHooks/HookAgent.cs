using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using TcpFreeze.Ebpf.Interop;
using Interop;

namespace TcpFreeze.CriuHooks;

/// <summary>
/// The resident agent: the hook's code loaded once, taking CRIU's steps from the small front end
/// <c>tcpfreeze-criu-hook</c> over a Unix socket, so that a step costs a connection instead of a
/// process start of the whole hook (about 3 ms, six or more times per migration, inside the downtime).
/// Each step runs exactly as the hook would run it (<see cref="HookProgram.RunStep"/>), with the
/// variables the front end passes and CRIU's PID found from the front end's own PID. Only a front end
/// that runs as root in the agent's PID, mount and network namespaces is served; any other gets status
/// <see cref="NotTaken"/> and runs the hook engine itself.
/// </summary>
/// <remarks>
/// Protocol (version 1), one connection per step. Front end to agent: <c>"TFH1\0"</c>, NUL-terminated
/// <c>NAME=VALUE</c> entries (its CRTOOLS_* and TCPFREEZE_* variables), one more <c>"\0"</c>, then the end
/// of its side. Agent to front end: one status byte (0-254 the step's exit code, 255 not taken), then text
/// for CRIU's log up to the end of the stream.
/// </remarks>
internal static class HookAgent
{
    /// <summary>The engine's argument that makes it the agent: <c>--agent [SOCKET]</c>.</summary>
    public const string Argument = "--agent";

    /// <summary>Where the front end looks for the agent unless TCPFREEZE_AGENT_SOCKET names another socket.</summary>
    public const string DefaultSocketPath = HookStateStore.RuntimeDirectory + "/agent.sock";

    /// <summary>The status byte that tells the front end to run the step itself.</summary>
    public const byte NotTaken = 255;

    private static readonly byte[] Magic = "TFH1\0"u8.ToArray();

    /// <summary>A request is a few variables: anything larger is not the front end's.</summary>
    private const int MaximumRequest = 64 * 1024;

    private const int SOL_SOCKET = 1, SO_PEERCRED = 17;

    /// <summary>How long a stop waits for the steps in progress (a kick to 10,000 connections takes a fraction of a second).</summary>
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(50);

    /// <summary>Steps being served now: a stop waits for them, so that no CRIU step is cut off half done.</summary>
    private static int s_active;

    /// <summary>The watch on new interfaces, which learns the pin roots of the steps served.</summary>
    private static AgentInterfaceWatch? s_interfaces;

    /// <summary>Serves until SIGTERM or SIGINT; returns the process's exit code.</summary>
    public static int Run(string[] args)
    {
        if (args.Length > 2 || (args.Length == 2 && !Path.IsPathFullyQualified(args[1])))
        {
            Console.Error.WriteLine($"usage: tcpfreeze-criu-hook {Argument} [SOCKET]   (an absolute path; default {DefaultSocketPath})");
            return 2;
        }
        string path = args.Length == 2 ? args[1] : DefaultSocketPath;
        TextWriter log = Console.Error;
        Socket listener;
        try
        {
            listener = Listen(path);
        }
        catch (Exception e) when (e is IOException or SocketException or UnauthorizedAccessException or FileRefusedException)
        {
            log.WriteLine($"tcpfreeze-agent: cannot serve at {path}: {e.Message}");
            return 1;
        }
        ulong inode = Libc.GetInode(path);
        using var stop = new CancellationTokenSource();
        void Stop(PosixSignalContext context)
        {
            context.Cancel = true;
            stop.Cancel();
            listener.Dispose(); // ends the Accept below
        }
        using PosixSignalRegistration term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
        using PosixSignalRegistration interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        // libbpf has one message callback per process: the agent's own log, for every step.
        LibbpfLog.SetLogger(new HookLoggerFactory(log).CreateLogger(LibbpfLog.Category));
        WarmUp();
        // What the warm-up allocated is not a step's: collected now, before any CRIU runs, and not counted.
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        Interlocked.Exchange(ref s_allocatedAtCollection, GC.GetTotalAllocatedBytes());
        var interfaces = new AgentInterfaceWatch(log);
        interfaces.Start();
        s_interfaces = interfaces;
        log.WriteLine($"tcpfreeze-agent: PID {Environment.ProcessId} takes CRIU's steps at {path}");
        try
        {
            while (!stop.IsCancellationRequested)
            {
                Socket client;
                try
                {
                    client = listener.Accept();
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException && stop.IsCancellationRequested)
                {
                    break;
                }
                catch (SocketException e)
                {
                    // Out of descriptors or memory for a moment: the front ends waiting meanwhile are
                    // served once it passes; none is lost (they queue in the backlog or run the engine).
                    log.WriteLine($"tcpfreeze-agent: accepting a step failed ({e.Message}); trying again");
                    Thread.Sleep(50);
                    continue;
                }
                // One thread per step: two CRIU runs at once must not wait for each other.
                Interlocked.Increment(ref s_active);
                new Thread(() => Serve(client, log)) { IsBackground = true, Name = "tcpfreeze-agent step" }.Start();
            }
        }
        finally
        {
            listener.Dispose();
            // Only our own socket: an agent started since may have bound the path again.
            if (Libc.GetInode(path) == inode && inode != 0)
                File.Delete(path);
            var waited = Stopwatch.StartNew();
            while (Volatile.Read(ref s_active) > 0 && waited.Elapsed < StopGrace)
                Thread.Sleep(10);
            if (Volatile.Read(ref s_active) > 0)
                log.WriteLine($"tcpfreeze-agent: {s_active} steps still running after {StopGrace.TotalSeconds:0} s; they end with the agent and CRIU fails them");
            log.WriteLine("tcpfreeze-agent: stopped; the hook runs each step itself until an agent runs again");
        }
        return 0;
    }

    /// <summary>
    /// Runs once, before the first step, what every step's first run would otherwise pay inside a migration's
    /// downtime (code and data the process has not touched yet, libbpf's first calls, the manifest's serializer):
    /// reading only, nothing is attached, frozen or written. What fails here fails again, and is reported, in a step.
    /// </summary>
    private static void WarmUp()
    {
        try
        {
            HookSettings settings = HookSettings.Load(_ => null);
            _ = TcpFreezer.IsAttached(settings.ToFreezerOptions());
            // Discovery of a large tree reads its sockets with a BPF iterator: load it now, not in a step.
            _ = ProcessSockets.PrepareFastDiscovery(out _);
            DiscoveredSockets own = ProcessSockets.Discover(Environment.ProcessId);
            _ = FreezeManifest.Create(Environment.ProcessId, settings.Lease, own.Connections, own.Listeners).ToJson();
        }
        catch (Exception e) when (e is TcpFreezeException or IOException or FormatException or UnauthorizedAccessException)
        {
        }
    }

    /// <summary>
    /// Binds <paramref name="path"/>, in a folder only root can change. A socket there that still answers is
    /// another agent's: refused. One that does not (an agent that was killed) is replaced.
    /// </summary>
    private static Socket Listen(string path)
    {
        string folder = Path.GetDirectoryName(path) ?? "/";
        if (!Directory.Exists(folder))
            Directory.CreateDirectory(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        TrustedFile.CheckFolders(folder, path, "the agent's socket", stickyFolderAllowed: false);
        if (Libc.TryGetOwnerAndMode(path, out _, out uint mode))
        {
            if ((mode & Libc.S_IFMT) != Libc.S_IFSOCK)
                throw new IOException($"{path} exists and is {TrustedFile.TypeName((int)(mode & Libc.S_IFMT))}, not a socket: remove it or name another path");
            using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(path));
                throw new IOException("another agent answers there already (stop it first, e.g. 'systemctl stop tcpfreeze-agent')");
            }
            catch (SocketException)
            {
                File.Delete(path); // left by an agent that did not stop cleanly
            }
        }
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(path));
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            listener.Listen(64);
            return listener;
        }
        catch
        {
            listener.Dispose();
            throw;
        }
    }

    /// <summary>
    /// After the steps that CRIU follows with its longest work (pre-dump: the dump itself; post-dump: the end of the dump,
    /// the copy and the restore's start; pre-restore: the restore of the tasks), and only with no other step in flight,
    /// collects the agent's garbage: so that the steps after them (1,500 connections allocate a few megabytes) start
    /// with the collector's budgets fresh instead of paying a collection of milliseconds inside the downtime (seen in
    /// post-dump, pre-restore and pre-resume). Not after post-restore, which pre-resume follows within a millisecond or two.
    /// </summary>
    private static void CollectWhileCriuWorks(string? action)
    {
        if (action is not ("pre-dump" or "post-dump" or "pre-restore") || Volatile.Read(ref s_active) > 1)
            return;
        // Only once the steps have allocated enough to bring a collection near: a collection costs CPU that CRIU's
        // own work shares (two cores here), and a migration of a few connections allocates far less than this.
        long allocated = GC.GetTotalAllocatedBytes();
        if (allocated - Interlocked.Read(ref s_allocatedAtCollection) < CollectAfterBytes)
            return;
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: false);
        Interlocked.Exchange(ref s_allocatedAtCollection, GC.GetTotalAllocatedBytes());
    }

    /// <summary>What the steps allocate before <see cref="CollectWhileCriuWorks"/> collects: a step of 1,500 connections takes a few times that, one of a few connections a tenth of it.</summary>
    private const long CollectAfterBytes = 1 << 20;

    private static long s_allocatedAtCollection;

    /// <summary>Serves one step; counted in <see cref="s_active"/> by the caller, from before its thread starts.</summary>
    private static void Serve(Socket client, TextWriter agentLog)
    {
        using (client)
        {
            try
            {
                client.ReceiveTimeout = client.SendTimeout = 10_000;
                long started = Stopwatch.GetTimestamp();
                (int pid, uint uid) = PeerCredentials(client);
                Dictionary<string, string>? variables = ReadRequest(client);
                string? refusal = variables is null ? "the request was not the hook's (protocol version 1)"
                    : uid != 0 ? $"the hook runs as uid {uid}, not root"
                    : NamespaceDifference(pid);
                if (refusal is not null)
                {
                    Reply(client, NotTaken, HookLoggerFactory.Prefix + $"the agent did not take this step: {refusal}; the hook does it itself\n");
                    return;
                }
                var text = new StringWriter(CultureInfo.InvariantCulture);
                var afterAnswer = new List<Func<string>>();
                int code = HookProgram.RunStep(name => variables!.GetValueOrDefault(name), HookContext.FindCriuPid(pid), text, ownsProcess: false, afterAnswer);
                try
                {
                    Reply(client, (byte)Math.Clamp(code, 0, 254), text.ToString());
                    client.Shutdown(SocketShutdown.Both); // the front end exits now; what follows is off CRIU's clock
                }
                catch (Exception e) when (e is SocketException or IOException)
                {
                    // The front end is gone (CRIU killed mid-step?). The step ran: the work below is still owed, the dump
                    // watcher above all, which thaws at once when CRIU has ended with the tasks still running.
                    agentLog.WriteLine($"tcpfreeze-agent: the answer to PID {pid} was not delivered: {e.Message}");
                }
                variables!.TryGetValue("CRTOOLS_SCRIPT_ACTION", out string? action);
                agentLog.WriteLine($"tcpfreeze-agent: {action} for PID {pid}: exit {code} in {Stopwatch.GetElapsedTime(started).TotalMilliseconds:0.0} ms");
                // Where this step froze: the watch attaches interfaces that come up while anything there is frozen.
                try
                {
                    s_interfaces?.Remember(HookSettings.Load(name => variables.GetValueOrDefault(name)));
                }
                catch (Exception e) when (e is FormatException or IOException or UnauthorizedAccessException)
                {
                    // the step itself said what is wrong with the settings
                }
                // Their lines (the dump watcher's start) go to the agent's log: CRIU's log has its answer already.
                foreach (Func<string> work in afterAnswer)
                {
                    try
                    {
                        agentLog.WriteLine($"tcpfreeze-agent: {work()}");
                    }
                    catch (Exception e) when (e is TcpFreezeException or IOException or UnauthorizedAccessException)
                    {
                        agentLog.WriteLine($"tcpfreeze-agent: after {action} for PID {pid}: {e.Message}");
                    }
                }
                CollectWhileCriuWorks(action);
            }
            catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException)
            {
                agentLog.WriteLine($"tcpfreeze-agent: a step's connection failed: {e.Message}");
            }
            catch (Exception e)
            {
                // A bug of ours: the front end sees the connection end without an answer and fails the
                // step; the agent goes on serving the next one.
                agentLog.WriteLine($"tcpfreeze-agent: a step failed: unexpected {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}");
            }
            finally
            {
                Interlocked.Decrement(ref s_active);
            }
        }
    }

    /// <summary>The front end's variables, or null when what arrived is not a version 1 request.</summary>
    private static Dictionary<string, string>? ReadRequest(Socket client)
    {
        byte[] buffer = new byte[MaximumRequest];
        int length = 0;
        while (length < buffer.Length)
        {
            int got = client.Receive(buffer.AsSpan(length));
            if (got == 0)
                break;
            length += got;
        }
        ReadOnlySpan<byte> request = buffer.AsSpan(0, length);
        if (length == buffer.Length || !request.StartsWith(Magic) || !request.EndsWith("\0\0"u8))
            return null;
        var variables = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string entry in Encoding.UTF8.GetString(request[Magic.Length..^2]).Split('\0'))
        {
            int equals = entry.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0 || !(entry.StartsWith("CRTOOLS_", StringComparison.Ordinal) || entry.StartsWith("TCPFREEZE_", StringComparison.Ordinal)))
                return null;
            variables[entry[..equals]] = entry[(equals + 1)..];
        }
        return variables;
    }

    private static void Reply(Socket client, byte status, string text)
    {
        byte[] body = Encoding.UTF8.GetBytes(text);
        byte[] reply = new byte[body.Length + 1];
        reply[0] = status;
        body.CopyTo(reply, 1);
        client.Send(reply);
    }

    /// <summary>The front end's PID and uid, from the kernel (SO_PEERCRED).</summary>
    private static (int Pid, uint Uid) PeerCredentials(Socket client)
    {
        Span<byte> credentials = stackalloc byte[12]; // struct ucred: pid, uid, gid
        int length = client.GetRawSocketOption(SOL_SOCKET, SO_PEERCRED, credentials);
        if (length < 12)
            throw new IOException("the kernel gave no credentials for the hook's connection");
        return (MemoryMarshal.Read<int>(credentials), MemoryMarshal.Read<uint>(credentials[4..]));
    }

    /// <summary>
    /// Why the step cannot run here, or null. CRIU's PIDs (CRTOOLS_INIT_PID), its paths and the network namespace
    /// the hook runs in (the host's, or the tree's own) must mean in the agent what they mean to the hook, so the
    /// hook must share the agent's PID, mount and network namespaces. An agent serves the CRIU runs of its own
    /// namespaces; CRIU run elsewhere (another network namespace, a container of its own) gets the engine.
    /// </summary>
    private static string? NamespaceDifference(int pid)
    {
        foreach ((string kind, string name) in new[] { ("pid", "PID"), ("mnt", "mount"), ("net", "network") })
        {
            string? theirs = new FileInfo($"/proc/{pid}/ns/{kind}").LinkTarget;
            string? ours = new FileInfo($"/proc/self/ns/{kind}").LinkTarget;
            if (theirs is null || theirs != ours)
                return $"the hook (PID {pid}) runs in another {name} namespace than the agent ({theirs ?? "unreadable"}, the agent's {ours})";
        }
        return null;
    }
}
