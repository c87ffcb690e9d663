namespace TcpFreeze.CriuHooks;

/// <summary>
/// The environment CRIU gives an action script: CRTOOLS_SCRIPT_ACTION, CRTOOLS_IMAGE_DIR
/// and CRTOOLS_INIT_PID.
/// </summary>
/// <param name="Action">The step.</param>
/// <param name="ActionName">The raw CRTOOLS_SCRIPT_ACTION value.</param>
/// <param name="ImageDirectory">The images directory (a /proc/CRIU_PID/fd/N path), when CRIU gave one.</param>
/// <param name="InitPid">The root task's PID, when CRIU gave one (it does not at pre-restore under some engines).</param>
public sealed record CriuEnvironment(CriuAction Action, string ActionName, string? ImageDirectory, int? InitPid)
{
    private static readonly Dictionary<string, CriuAction> Names = new(StringComparer.Ordinal)
    {
        ["pre-dump"] = CriuAction.PreDump,
        ["post-dump"] = CriuAction.PostDump,
        ["pre-restore"] = CriuAction.PreRestore,
        ["setup-namespaces"] = CriuAction.SetupNamespaces,
        ["post-setup-namespaces"] = CriuAction.PostSetupNamespaces,
        ["post-restore"] = CriuAction.PostRestore,
        ["pre-resume"] = CriuAction.PreResume,
        ["post-resume"] = CriuAction.PostResume,
        ["network-lock"] = CriuAction.NetworkLock,
        ["network-unlock"] = CriuAction.NetworkUnlock,
    };

    /// <summary>Reads and validates the CRTOOLS_* variables.</summary>
    /// <exception cref="FormatException">A variable is missing or malformed; the message names it.</exception>
    public static CriuEnvironment Parse(IReadOnlyDictionary<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        string? action = environment.GetValueOrDefault("CRTOOLS_SCRIPT_ACTION");
        if (string.IsNullOrEmpty(action))
            throw new FormatException("CRTOOLS_SCRIPT_ACTION is not set: this program is meant to be run by CRIU as an action script (--action-script PATH).");
        string? images = environment.GetValueOrDefault("CRTOOLS_IMAGE_DIR");
        int? pid = null;
        if (environment.GetValueOrDefault("CRTOOLS_INIT_PID") is { Length: > 0 } pidText)
        {
            if (!int.TryParse(pidText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int value) || value <= 0)
                throw new FormatException($"CRTOOLS_INIT_PID is '{pidText}', not a positive process id.");
            pid = value;
        }
        return new CriuEnvironment(Names.GetValueOrDefault(action, CriuAction.Unknown), action, string.IsNullOrEmpty(images) ? null : images, pid);
    }

    /// <summary>Reads the current process's environment.</summary>
    public static CriuEnvironment FromProcess()
        => Parse(new Dictionary<string, string?>
        {
            ["CRTOOLS_SCRIPT_ACTION"] = Environment.GetEnvironmentVariable("CRTOOLS_SCRIPT_ACTION"),
            ["CRTOOLS_IMAGE_DIR"] = Environment.GetEnvironmentVariable("CRTOOLS_IMAGE_DIR"),
            ["CRTOOLS_INIT_PID"] = Environment.GetEnvironmentVariable("CRTOOLS_INIT_PID"),
        });
}
