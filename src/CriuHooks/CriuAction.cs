namespace TcpFreeze.CriuHooks;

/// <summary>The steps at which CRIU runs action scripts (CRTOOLS_SCRIPT_ACTION).</summary>
public enum CriuAction
{
    /// <summary>An action this adapter does not know; hooks should ignore it.</summary>
    Unknown,
    /// <summary>"pre-dump": before the tasks are frozen.</summary>
    PreDump,
    /// <summary>"post-dump": after the images are written, before the tasks are killed (or left running).</summary>
    PostDump,
    /// <summary>"pre-restore": before anything is restored.</summary>
    PreRestore,
    /// <summary>"setup-namespaces": restore; the root task and its namespaces exist (CRTOOLS_INIT_PID is set), no socket is restored yet.</summary>
    SetupNamespaces,
    /// <summary>"post-setup-namespaces".</summary>
    PostSetupNamespaces,
    /// <summary>"post-restore": the tasks are restored but not yet running.</summary>
    PostRestore,
    /// <summary>"pre-resume": just before the tasks resume.</summary>
    PreResume,
    /// <summary>"post-resume": the tasks run again.</summary>
    PostResume,
    /// <summary>"network-lock": only for a task tree in its own network namespace.</summary>
    NetworkLock,
    /// <summary>"network-unlock": only for a task tree in its own network namespace.</summary>
    NetworkUnlock,
}
