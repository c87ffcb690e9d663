using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Interop;

namespace TcpFreeze.CriuHooks;

/// <summary>
/// Tells a migration from a dump after which the tasks keep running. Started at
/// pre-dump as a detached copy of the hook, it watches the dumped root task and CRIU
/// through pidfds. If the task dies first, CRIU killed it after the dump: a migration,
/// and the freeze must hold until the restore side thaws it. If CRIU ends while the
/// task still runs (--leave-running, an iterative `criu pre-dump`, a failed or killed
/// dump), nothing will restore it, so the watcher thaws what pre-dump froze at once
/// (for a tree in a network namespace of its own: releases that namespace's lock), after
/// taking the tree's sockets out of the TCP repair mode a killed CRIU leaves them in.
/// While CRIU holds the tasks it renews the lease, so a dump longer than the lease never lapses
/// its own freeze; otherwise it never outlives the lease: after that the kernel ignores the entries
/// anyway. When another CRIU holds the tree (a second dump of it that failed), it touches nothing.
/// <para>
/// A lazy-pages dump (<c>criu dump --lazy-pages</c>, post-copy) keeps the tasks alive and stopped after
/// post-dump while its page server hands their memory to the destination's <c>criu lazy-pages</c>
/// daemon, and kills them only once the transfer is done (criu/cr-dump.c, cr_lazy_mem_dump): the
/// watcher sees the task die first, as in any migration, and never thaws while the page server runs.
/// When the transfer fails (criu/page-xfer.c: the connection reset, a bad request), CRIU resumes the
/// tasks on the source without its network unlock, so every dumped socket is still in repair mode: the
/// watcher takes them out and thaws, as after a killed CRIU. That needs the freeze to have held until
/// then: once the lease lapses while the page server waits, peers' segments reach the stopped tasks'
/// sockets, and a task resumed after a failed transfer reads them before the watcher's turn, gets
/// EPERM from its repair-mode socket and (most servers) closes it: seen here with a lease of 6 s and a
/// transfer that broke 10 s into the dump, the echo server had closed all 100 connections by then. So
/// the lease must cover the page server's wait as well (see docs/criu.md, "Post-copy").
/// </para>
/// </summary>
internal static class DumpWatcher
{
    /// <summary>The argument that starts the hook executable as a watcher.</summary>
    public const string Argument = "--watch-dump";

    /// <summary>How long a task CRIU killed may take to die after CRIU exits before it counts as left running.</summary>
    private static readonly TimeSpan KillGrace = TimeSpan.FromSeconds(3);

    internal static string TryStart(HookContext context, int initPid, FreezeManifest manifest)
        => TryStart(context, initPid, manifest, manifest.ToJson());

    /// <summary>Saves the dump state and starts the watcher, with the manifest already serialized (<see cref="FreezeManifest.ToJson"/>).</summary>
    internal static string TryStart(HookContext context, int initPid, FreezeManifest manifest, byte[] json, StepTimer? phases = null)
    {
        HookStateStore.SaveDumpState(context, initPid, json);
        phases?.Mark("state");
        if (context.ExecutablePath is null)
            return "no dump watcher (no hook executable); the lease bounds the freeze";
        if (context.AfterAnswer is { } later)
        {
            // The agent starts it once CRIU has this step's answer; should that fail, the agent's log says so.
            later.Add(() => $"pre-dump of PID {initPid} (CRIU {context.CriuPid}): {Start(context, initPid, manifest, json, null)}");
            return manifest.OwnNetworkNamespace
                ? "the agent starts the dump watcher, which releases the namespace lock should CRIU end while the tasks still run"
                : "the agent starts the dump watcher, which thaws at once if the tasks keep running";
        }
        return Start(context, initPid, manifest, json, phases);
    }

    private static string Start(HookContext context, int initPid, FreezeManifest manifest, byte[] json, StepTimer? phases)
    {
        try
        {
            var info = new ProcessStartInfo(context.ExecutablePath!)
            {
                RedirectStandardInput = true,
                UseShellExecute = false,
            };
            foreach (string argument in new[] { Argument, Invariant(initPid), Invariant(context.CriuPid), context.Settings.PinRoot, context.Settings.LogFile ?? "-",
                         context.Settings.KeepAttached ? "keep-attached" : "detach-when-idle" })
                info.ArgumentList.Add(argument);
            using Process process = Process.Start(info) ?? throw new InvalidOperationException("the process did not start");
            phases?.Mark("watcher start");
            // No handshake: if CRIU or the task is gone before the watcher opens its pidfds,
            // the watcher sees that and decides the same way it would have. A manifest larger
            // than the pipe (64 KiB: about 1,400 connections) would make this wait until the
            // watcher has started and read it: the pipe is grown to hold it all instead.
            Stream input = process.StandardInput.BaseStream;
            if (json.Length >= DefaultPipeSize && PipeDescriptor(input) is int pipe)
                _ = Libc.fcntl(pipe, Libc.F_SETPIPE_SZ, Math.Min(json.Length + 1, MaximumPipeSize));
            input.Write(json);
            process.StandardInput.Close();
            phases?.Mark("watcher input");
            return manifest.OwnNetworkNamespace
                ? $"dump watcher PID {process.Id} releases the namespace lock should CRIU end while the tasks still run"
                : $"dump watcher PID {process.Id} thaws at once if the tasks keep running";
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or IOException)
        {
            return $"the dump watcher did not start ({e.Message}); the lease bounds the freeze";
        }
    }

    /// <summary>The descriptor under the watcher's stdin stream (a pipe stream on Linux), while the stream is open.</summary>
    private static int? PipeDescriptor(Stream input) => input switch
    {
        System.IO.Pipes.PipeStream pipe => (int)pipe.SafePipeHandle.DangerousGetHandle(),
        FileStream file => (int)file.SafeFileHandle.DangerousGetHandle(),
        _ => null,
    };

    /// <summary>A pipe's capacity unless grown (F_SETPIPE_SZ).</summary>
    private const int DefaultPipeSize = 64 * 1024;

    /// <summary>What an unprivileged process may grow a pipe to by default (/proc/sys/fs/pipe-max-size); root may go further, but a failed grow only means waiting.</summary>
    private const int MaximumPipeSize = 1024 * 1024;

    /// <summary>The watcher process: <c>--watch-dump INIT_PID CRIU_PID PIN_ROOT LOG_FILE|- keep-attached|detach-when-idle</c>, manifest JSON on stdin.</summary>
    public static unsafe int Run(string[] args)
    {
        if (args.Length != 6 || !int.TryParse(args[1], out int initPid) || !int.TryParse(args[2], out int criuPid)
            || args[5] is not ("keep-attached" or "detach-when-idle"))
        {
            Console.Error.WriteLine($"usage: {Argument} INIT_PID CRIU_PID PIN_ROOT LOG_FILE|- keep-attached|detach-when-idle  (started by the hook itself)");
            return 2;
        }
        using Stream input = Console.OpenStandardInput();
        FreezeManifest manifest = JsonSerializer.Deserialize(input, ManifestJson.Default.FreezeManifest)
            ?? throw new InvalidDataException("the watcher got no manifest");
        using FileDescriptorHandle initFd = Libc.PidfdOpen(initPid);
        using FileDescriptorHandle criuFd = Libc.PidfdOpen(criuPid);
        Libc.setsid();
        LetGoOfCriu(args[4]);

        string state = HookStateStore.DumpStatePath(criuPid, initPid);
        try
        {
            return Watch(initPid, criuPid, PollNumber(initFd), PollNumber(criuFd), args[3], manifest, state, args[5] == "keep-attached");
        }
        finally
        {
            HookStateStore.TryRemove(state);
        }
    }

    private static int Watch(int initPid, int criuPid, int initFd, int criuFd, string pinRoot, FreezeManifest manifest, string state, bool keepAttached)
    {
        if (initFd < 0)
            return 0; // the task is gone already: nothing to watch
        TimeSpan lease = TimeSpan.FromSeconds(manifest.LeaseSeconds);
        // While CRIU holds the tasks (it seizes them with ptrace right after pre-dump and keeps them
        // until it kills or releases them, a lazy-pages page server's wait included), the freeze must
        // not lapse however long that takes: a lapse lets peers' segments reach sockets whose queues
        // CRIU has already read. So the lease is renewed three times per lease while the root task's
        // tracer is this CRIU. Once it is not (killed after the dump: a migration), the lease bounds
        // the copy to the restore, and the watcher ends with it.
        TimeSpan renewEvery = TimeSpan.FromMilliseconds(Math.Max(100, lease.TotalMilliseconds / 3));
        var sinceRenewal = Stopwatch.StartNew();
        var leaseClock = Stopwatch.StartNew();
        bool criuEnded = criuFd < 0;
        while (!criuEnded)
        {
            TimeSpan leaseLeft = lease - leaseClock.Elapsed;
            if (leaseLeft <= TimeSpan.Zero)
                return 0;
            TimeSpan untilRenewal = renewEvery - sinceRenewal.Elapsed;
            int wait = (int)Math.Max(0, (leaseLeft < untilRenewal ? leaseLeft : untilRenewal).TotalMilliseconds);
            int which = wait == 0 ? -1 : WaitForExit(initFd, criuFd, wait);
            if (which == initFd)
                return 0; // CRIU killed the task after the dump: a migration
            criuEnded = which == criuFd;
            if (!criuEnded && sinceRenewal.Elapsed >= renewEvery)
            {
                if (!manifest.OwnNetworkNamespace && DumpedTree.TracerOf("/proc", initPid) == criuPid
                    && RenewWhileDumping(initPid, pinRoot, ReadLatest(manifest, state), lease))
                    leaseClock.Restart();
                sinceRenewal.Restart();
            }
        }
        // CRIU kills the tasks of a migration before it exits. A task that is still there now is
        // either dying (SIGKILL pending, or a zombie) or left running (--leave-running, a failed dump):
        // only the first is worth waiting for, so the second is released at once.
        if (DumpedTree.IsDying(initPid) && WaitForExit(initFd, -1, (int)KillGrace.TotalMilliseconds) == initFd)
            return 0;

        // Another CRIU may be dumping the same tree (a second `criu dump` of it that failed, this one,
        // while the first goes on): its sockets are in repair mode for that CRIU, and the freeze is its.
        if (DumpedTree.FindOtherTracer(initPid, criuPid: -1) is { } other)
        {
            Console.Out.WriteLine($"tcpfreeze-hook: CRIU ended and PID {initPid} still runs, but {other}: " +
                                  "left its sockets in repair mode and its freeze in place for that dump");
            return 0;
        }
        manifest = ReadLatest(manifest, state);
        // A CRIU killed part-way leaves the sockets it had reached in TCP repair mode, where the
        // running tasks can neither read nor write them: take them out before any packet flows.
        RepairRecoveryResult repair = TcpRepairRecovery.TakeOutOfRepair(initPid);
        if (repair.Released > 0 || repair.Failures.Count > 0)
            Console.Out.WriteLine($"tcpfreeze-hook: CRIU ended and PID {initPid} still runs: {repair}");
        if (manifest.OwnNetworkNamespace)
        {
            // CRIU's network-unlock releases the lock after a failed or --leave-running dump;
            // this covers a CRIU that died before it could (releasing twice is harmless).
            NamespaceLock.Release(initPid);
            Console.Out.WriteLine($"tcpfreeze-hook: CRIU ended and PID {initPid} still runs: released the lock of its network namespace");
            return 0;
        }
        var options = new FreezerOptions { PinRoot = pinRoot };
        using TcpFreezer freezer = TcpFreezer.Open(options);
        ThawResult result = freezer.Thaw(manifest.ConnectionKeys(), manifest.EndpointKeys());
        string detached = TcpFreezeHook.DetachIfIdle(freezer, keepAttached);
        Console.Out.WriteLine($"tcpfreeze-hook: CRIU ended and PID {initPid} still runs (--leave-running, pre-dump or a failed dump): " +
                              $"thawed {result.ConnectionsThawed} connections and {result.EndpointsThawed} listening endpoints{detached}");
        return 0;
    }

    /// <summary>The manifest as post-dump last wrote it to the state file, else the one pre-dump handed over.</summary>
    private static FreezeManifest ReadLatest(FreezeManifest manifest, string state)
    {
        try
        {
            return File.Exists(state) ? FreezeManifest.Read(Path.GetDirectoryName(state)!, Path.GetFileName(state)) : manifest;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            return manifest;
        }
    }

    /// <summary>Renews the lease of what the manifest froze; false (and a log line) when that failed.</summary>
    private static bool RenewWhileDumping(int initPid, string pinRoot, FreezeManifest manifest, TimeSpan lease)
    {
        try
        {
            using TcpFreezer freezer = TcpFreezer.Open(new FreezerOptions { PinRoot = pinRoot });
            int renewed = freezer.RenewLease(manifest.ConnectionKeys(), manifest.EndpointKeys(), lease);
            Console.Out.WriteLine($"tcpfreeze-hook: CRIU still holds PID {initPid}: renewed the lease of {renewed} entries to {lease.TotalSeconds:0.###} s from now");
            return true;
        }
        catch (TcpFreezeException e)
        {
            Console.Out.WriteLine($"tcpfreeze-hook: CRIU still holds PID {initPid}, but renewing its lease failed ({e.Message}); the lease may end during the dump, which post-dump then reports");
            return false;
        }
    }

    /// <summary>Waits until one of the pidfds is readable (its process exited); returns it, or -1 on timeout (-1 as <paramref name="second"/>: only the first).</summary>
    internal static unsafe int WaitForExit(int first, int second, int timeoutMs)
    {
        Libc.PollFd* fds = stackalloc Libc.PollFd[2];
        fds[0] = new Libc.PollFd { Fd = first, Events = Libc.POLLIN };
        fds[1] = new Libc.PollFd { Fd = second, Events = Libc.POLLIN };
        int count = second < 0 ? 1 : 2;
        int ready = Libc.poll(fds, (nuint)count, timeoutMs);
        if (ready <= 0)
            return -1;
        return (fds[0].Revents & Libc.POLLIN) != 0 ? first : second;
    }

    /// <summary>The descriptor number for poll(2), -1 (ignored by poll) when the process was gone already; valid while the handle is.</summary>
    internal static int PollNumber(FileDescriptorHandle pidFd) => pidFd.IsInvalid ? -1 : (int)pidFd.DangerousGetHandle();

    /// <summary>
    /// The two descriptors <see cref="LetGoOfCriu"/> opens. They stay open on purpose, with 0, 1 and 2 as their copies, for
    /// the watcher's whole life: held here so that no finalizer closes them (one of them may be 0, 1 or 2 itself).
    /// </summary>
    private static FileDescriptorHandle? s_devNull, s_log;

    /// <summary>
    /// Lets go of the hook's pipes and CRIU's log: stdin from /dev/null, stdout and stderr to the log file or
    /// /dev/null. The log file is opened by the hook's rule (<see cref="TrustedFile.OpenForAppend"/>): never
    /// through a link, only in a folder no other user can change; when refused, the watcher writes nowhere
    /// (the hook that started it has said why in CRIU's log already). The restore watcher uses it too.
    /// </summary>
    internal static void LetGoOfCriu(string logFile)
    {
        s_devNull = Libc.open("/dev/null", Libc.O_RDWR | Libc.O_CLOEXEC);
        s_log = logFile == "-" ? null : OpenLog(logFile);
        FileDescriptorHandle output = s_log is { IsInvalid: false } ? s_log : s_devNull;
        Libc.dup2(s_devNull, 0);
        Libc.dup2(output, 1);
        Libc.dup2(output, 2);
        // .NET may have opened its stdout writer already (on a copy of the old descriptor 1, CRIU's
        // output): the watcher's lines then never reached the log file. Write to the new 1 instead,
        // and let go of that copy.
        TextWriter old = Console.Out;
        Console.SetOut(new StreamWriter(new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(1, ownsHandle: false), FileAccess.Write, 1)) { AutoFlush = true });
        old.Dispose();
    }

    private static FileDescriptorHandle? OpenLog(string logFile)
    {
        try
        {
            return TrustedFile.OpenForAppend(logFile, "the log file");
        }
        catch (FileRefusedException)
        {
            return null;
        }
    }

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);
}
