using System.Diagnostics;
using System.Globalization;
using Interop;

namespace TcpFreeze.CriuHooks;

/// <summary>
/// The restore side's counterpart of <see cref="DumpWatcher"/>: the hook started again at pre-restore
/// (<c>--watch-restore</c>), it waits for the restoring CRIU to end and then detaches when idle, as
/// post-resume does. Without it, a CRIU killed at or just after pre-resume (the tasks run on once their
/// tracer is gone, pre-resume has thawed) never runs post-resume, and the programs and pins stayed
/// attached with nothing frozen. When post-resume did run, it finds nothing attached and says nothing.
/// <para>
/// Why pre-restore starts it, not pre-resume: pre-resume runs while the restored tasks wait, inside the
/// migration's downtime, and a process start costs about a millisecond there; pre-restore already
/// attaches and freezes. What waits for CRIU is the small C front end (<c>tcpfreeze-criu-hook</c>, under a
/// millisecond to start), at SCHED_IDLE; it becomes the engine only once CRIU has ended, so the engine's
/// start-up (NativeAOT's, some 15 ms of CPU) runs neither during CRIU's restore nor at pre-resume.
/// Why it waits for CRIU, not the hook: CRIU runs post-resume before it exits, so once CRIU has ended
/// no step of this restore can still want the programs. It never holds the frozen set open while it
/// waits (an open freezer would keep post-resume's and any other migration's idle detach from
/// detaching), and its detach is <see cref="TcpFreezer.DetachIfIdle"/>: nothing frozen, nobody else with
/// the set open. A pre-resume hook that outlives its killed CRIU still has the set open for a moment,
/// so the watcher tries again for a few seconds. What is still frozen after that (a restore that failed keeps
/// its connections for a retry until their lease ends, on purpose) keeps the programs until that lease ends,
/// and the watcher detaches when idle then.
/// Its waits are bounded by the lease, like the dump watcher's: it waits for CRIU at most that long (a restore
/// that takes longer has lost its freeze anyway, and its post-resume or <c>tcpfreeze detach --if-idle</c> detaches),
/// and for a freeze to end only when that freeze ends within it.
/// Not started with keep-attached, nor for a tree in a network namespace of its own (nothing is attached then).
/// </para>
/// </summary>
internal static class RestoreWatcher
{
    /// <summary>The argument that starts the hook executable as a restore watcher.</summary>
    public const string Argument = "--watch-restore";

    /// <summary>How long, after CRIU ended, the watcher retries while another process has the set open.</summary>
    private static readonly TimeSpan InUseGrace = TimeSpan.FromSeconds(3);

    private static readonly TimeSpan RetryEvery = TimeSpan.FromMilliseconds(100);

    /// <summary>The front end CRIU runs, beside the engine; it waits for CRIU itself and becomes the engine only then.</summary>
    private const string FrontEnd = "tcpfreeze-criu-hook";

    /// <summary>Starts the watcher for <see cref="HookContext.CriuPid"/>; what happened, for pre-restore's log line.</summary>
    internal static string TryStart(HookContext context)
    {
        if (context.ExecutablePath is null)
            return "no restore watcher (no hook executable)";
        if (context.AfterAnswer is { } later)
        {
            // The agent starts it once CRIU has this step's answer (a process start costs it about 1 ms).
            later.Add(() => $"pre-restore (CRIU {context.CriuPid}): {Start(context)}");
            return "the agent starts the restore watcher, which detaches when idle should CRIU end without post-resume";
        }
        return Start(context);
    }

    private static string Start(HookContext context)
    {
        try
        {
            // The small C front end waits for CRIU when it is there (the published layout); else the engine itself does.
            string engine = context.ExecutablePath!;
            string frontEnd = Path.Combine(Path.GetDirectoryName(engine) ?? "/", FrontEnd);
            string program = Path.GetFileName(engine) != FrontEnd && File.Exists(frontEnd) ? frontEnd : engine;
            var info = new ProcessStartInfo(program) { UseShellExecute = false };
            foreach (string argument in new[] { Argument, Invariant(context.CriuPid), context.Settings.PinRoot, context.Settings.LogFile ?? "-",
                         Invariant((long)Math.Ceiling(context.Settings.Lease.TotalSeconds)) })
                info.ArgumentList.Add(argument);
            using Process process = Process.Start(info) ?? throw new InvalidOperationException("the process did not start");
            // What waits (the front end, or the engine's NativeAOT start-up where there is none) runs only on CPU time
            // nobody else wants until CRIU has ended, then back at the ordinary policy. Failing to lower it costs speed, not correctness.
            _ = Libc.sched_setscheduler(process.Id, Libc.SCHED_IDLE, 0);
            return $"restore watcher PID {process.Id} detaches when idle should CRIU end without post-resume";
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or IOException)
        {
            return $"the restore watcher did not start ({e.Message}); should CRIU die before post-resume, `tcpfreeze detach --if-idle` removes the programs";
        }
    }

    /// <summary>
    /// The watcher process: <c>--watch-restore CRIU_PID PIN_ROOT LOG_FILE|- LEASE_SECONDS [ended]</c>; "ended" when the
    /// front end has waited for CRIU already.
    /// </summary>
    public static int Run(string[] args)
    {
        if (args.Length is not (5 or 6) || !int.TryParse(args[1], NumberStyles.None, CultureInfo.InvariantCulture, out int criuPid)
            || !long.TryParse(args[4], NumberStyles.None, CultureInfo.InvariantCulture, out long leaseSeconds) || (args.Length == 6 && args[5] != "ended"))
        {
            Console.Error.WriteLine($"usage: {Argument} CRIU_PID PIN_ROOT LOG_FILE|- LEASE_SECONDS [ended]  (started by the hook itself)");
            return 2;
        }
        bool ended = args.Length == 6;
        using FileDescriptorHandle? criuFd = ended ? null : Libc.PidfdOpen(criuPid);
        Libc.setsid();
        DumpWatcher.LetGoOfCriu(args[3]);
        int pollable = criuFd is null ? -1 : DumpWatcher.PollNumber(criuFd);
        int timeout = (int)Math.Min(int.MaxValue, TimeSpan.FromSeconds(leaseSeconds).TotalMilliseconds);
        if (pollable >= 0 && DumpWatcher.WaitForExit(pollable, -1, timeout) != pollable)
            return 0; // CRIU still restores after the lease: its post-resume detaches
        // Nothing competes with CRIU any more: back to the ordinary policy, so the detach is not starved on a busy host.
        _ = Libc.sched_setscheduler(0, Libc.SCHED_OTHER, 0);
        // What pre-restore froze and pre-resume has not thawed yet (it removes this state once it has): this restore's own
        // connections. post-resume cannot run any more, so the state is of no other use now.
        string state = HookStateStore.RestoreStatePath(criuPid);
        OwnKeys own = ReadOwnKeys(state);
        HookStateStore.TryRemove(state);
        return DetachWhenIdle(criuPid, new FreezerOptions { PinRoot = args[2] }, own, TimeSpan.FromSeconds(leaseSeconds));
    }

    /// <summary>The keys of this restore's manifest, while pre-resume has not thawed them.</summary>
    private sealed record OwnKeys(HashSet<ConnectionKey> Connections, HashSet<EndpointKey> Endpoints);

    private static OwnKeys ReadOwnKeys(string state)
    {
        try
        {
            if (File.Exists(state) && FreezeManifest.Read(Path.GetDirectoryName(state)!, Path.GetFileName(state)) is { } manifest)
                return new OwnKeys([.. manifest.ConnectionKeys()], [.. manifest.EndpointKeys()]);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            // Unreadable: counted as thawed; the lease bounds whatever it froze.
        }
        return new OwnKeys([], []);
    }

    /// <summary>
    /// Detaches when idle. While this restore's own connections are frozen (CRIU died during pre-resume, whose hook
    /// still thaws) or nothing is frozen but another process has the set open (that same hook, finishing), it tries
    /// again for a few seconds. Another migration's frozen connections are left to that migration's own steps at once,
    /// without probing meanwhile: a probe holds the set open, and its post-resume's idle detach would then keep the
    /// programs. Own connections still frozen after that (CRIU died before pre-resume: a failed restore, kept for a
    /// retry on purpose) keep the programs until their lease ends; the watcher detaches when idle then.
    /// </summary>
    private static int DetachWhenIdle(int criuPid, FreezerOptions options, OwnKeys own, TimeSpan lease)
    {
        try
        {
            Probe probe = TryDetach(criuPid, options, own, InUseGrace);
            if (probe.Done)
                return 0;
            if (probe.OwnLeaseLeft is { } left && left <= lease)
            {
                Console.Out.WriteLine($"tcpfreeze-hook: CRIU (PID {criuPid}) ended before pre-resume thawed its connections (a failed restore keeps them " +
                                      $"frozen for a retry); the programs stay attached until their lease ends in {left.TotalSeconds:0.#} s, then are detached if idle");
                Thread.Sleep(left + RetryEvery);
                if (TryDetach(criuPid, options, own, InUseGrace).Done)
                    return 0;
            }
            Console.Out.WriteLine($"tcpfreeze-hook: CRIU (PID {criuPid}) ended; other connections are still frozen, or another process has the programs open: " +
                                  "they stay attached for them (their own steps, or `tcpfreeze detach --if-idle`, remove them once idle)");
        }
        catch (TcpFreezeException e)
        {
            Console.Out.WriteLine($"tcpfreeze-hook: CRIU (PID {criuPid}) ended, but the restore watcher's idle detach failed: {e.Message}");
        }
        return 0;
    }

    /// <summary>What a round of detach attempts found: done (detached, or nothing attached), or the longest lease left of own frozen keys.</summary>
    private readonly record struct Probe(bool Done, TimeSpan? OwnLeaseLeft);

    private static Probe TryDetach(int criuPid, FreezerOptions options, OwnKeys own, TimeSpan grace)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            // post-resume detached (the normal end), or nothing was ever attached: nothing to say.
            if (!TcpFreezer.IsAttached(options))
                return new Probe(true, null);
            TimeSpan? ownLeft = null;
            bool othersFrozen = false;
            using (TcpFreezer freezer = TcpFreezer.Open(options))
            {
                foreach ((bool isOwn, TimeSpan? left) in freezer.ListConnections().Where(c => !c.IsExpired).Select(c => (own.Connections.Contains(c.Key), c.LeaseRemaining))
                             .Concat(freezer.ListEndpoints().Where(e => !e.IsExpired).Select(e => (own.Endpoints.Contains(e.Key), e.LeaseRemaining))))
                {
                    TimeSpan until = left ?? TimeSpan.MaxValue; // no lease: frozen until thawed
                    if (!isOwn)
                        othersFrozen = true;
                    else if (ownLeft is null || until > ownLeft)
                        ownLeft = until;
                }
                if (ownLeft is null && !othersFrozen && freezer.DetachIfIdle() is { } d)
                {
                    Console.Out.WriteLine($"tcpfreeze-hook: CRIU (PID {criuPid}) ended without detaching (killed at or after pre-resume?); nothing was frozen, " +
                                          $"so detached from {string.Join(", ", d.Interfaces)} and removed {d.PinsRemoved} pins");
                    return new Probe(true, null);
                }
            }
            if (ownLeft is null && othersFrozen)
                return new Probe(false, null);
            if (clock.Elapsed >= grace)
                return new Probe(false, ownLeft);
            Thread.Sleep(RetryEvery);
        }
    }

    private static string Invariant(long value) => value.ToString(CultureInfo.InvariantCulture);
}
