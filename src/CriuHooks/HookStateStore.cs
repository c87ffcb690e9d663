using System.Globalization;

namespace TcpFreeze.CriuHooks;

/// <summary>
/// The hook's own state between CRIU steps, in a root-only runtime directory: the dump
/// side's current manifest for its <see cref="DumpWatcher"/>, and the manifest
/// pre-restore leaves for pre-resume and post-resume (CRIU closes the images directory
/// before post-resume). File names carry CRIU's PID, so the states of CRIU runs that are
/// gone can be recognised and removed.
/// </summary>
internal static class HookStateStore
{
    /// <summary>Where the dump side keeps the current manifest for its watcher (root-only tmpfs).</summary>
    public const string RuntimeDirectory = "/run/tcpfreeze";

    public static string DumpStatePath(int criuPid, int initPid) => Path.Combine(RuntimeDirectory, $"dump-{Invariant(criuPid)}-{Invariant(initPid)}.json");

    /// <summary>Where pre-restore leaves the manifest for post-resume: CRIU closes the images directory before post-resume.</summary>
    public static string RestoreStatePath(int criuPid) => Path.Combine(RuntimeDirectory, $"restore-{Invariant(criuPid)}.json");

    /// <summary>
    /// Saves the manifest where the watcher reads it when it must thaw: post-dump may add
    /// connections after the watcher started, and the images directory is only reachable
    /// while CRIU runs. Best effort: without it the watcher thaws what pre-dump froze.
    /// </summary>
    public static void SaveDumpState(HookContext context, int initPid, FreezeManifest manifest)
        => SaveDumpState(context, initPid, manifest.ToJson());

    /// <summary>The same with the manifest already serialized (<see cref="FreezeManifest.ToJson"/>).</summary>
    public static void SaveDumpState(HookContext context, int initPid, byte[] json)
        => TrySave(context, DumpStatePath(context.CriuPid, initPid), json, "the watcher will thaw what pre-dump froze");

    /// <summary>Saves a manifest under <see cref="RuntimeDirectory"/> (root-only), first removing the states of CRIU runs that are gone.</summary>
    public static void TrySave(HookContext context, string path, FreezeManifest manifest, string otherwise)
        => TrySave(context, path, FreezeManifest.BytesOf(manifest), otherwise);

    /// <summary>The same with the manifest already serialized (<see cref="FreezeManifest.ToJson"/>).</summary>
    public static void TrySave(HookContext context, string path, byte[] json, string otherwise)
    {
        try
        {
            Directory.CreateDirectory(RuntimeDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            RemoveStaleStates();
            FreezeManifest.WriteJson(RuntimeDirectory, Path.GetFileName(path), json);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            context.Info($"could not save {Path.GetFileName(path)} in {RuntimeDirectory} ({e.Message}); {otherwise}");
        }
    }

    /// <summary>Updates the saved state of a dump whose watcher runs (post-dump found more connections).</summary>
    public static void UpdateDumpState(HookContext context, int initPid, byte[] json)
    {
        if (File.Exists(DumpStatePath(context.CriuPid, initPid)))
            SaveDumpState(context, initPid, json);
    }

    /// <summary>Removes a saved state; false when there was none.</summary>
    public static bool TryRemove(string path)
    {
        try
        {
            if (!File.Exists(path))
                return false;
            File.Delete(path);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>
    /// Removes the states of CRIU runs that are gone: a watcher that was killed, or a
    /// restore whose post-resume never ran, cannot remove its own. The file name carries CRIU's PID.
    /// </summary>
    private static void RemoveStaleStates()
    {
        foreach (string file in Directory.EnumerateFiles(RuntimeDirectory, "*.json"))
        {
            string[] parts = Path.GetFileNameWithoutExtension(file).Split('-');
            bool known = (parts is ["dump", _, _] or ["restore", _]) && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int criuPid)
                         && !Directory.Exists($"/proc/{criuPid}");
            if (known)
                File.Delete(file);
        }
    }

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);
}
