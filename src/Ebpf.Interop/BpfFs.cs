using System.Runtime.InteropServices;
using Interop;
using TcpFreeze.Native;

namespace TcpFreeze.Ebpf.Interop;

/// <summary>
/// The BPF filesystem (bpffs), where pinned maps and programs outlive the process
/// that created them. Pins live until they are removed or the machine reboots.
/// </summary>
public static unsafe class BpfFs
{
    /// <summary>Where bpffs is conventionally mounted.</summary>
    public const string DefaultMountPoint = "/sys/fs/bpf";

    /// <summary>Whether <paramref name="path"/> (an existing directory) is on a bpf filesystem.</summary>
    public static bool IsBpfFs(string path)
    {
        Libc.StatFs buffer;
        if (Libc.statfs(path, &buffer) != 0)
            return false;
        return buffer.Type == Libc.BpfFsMagic;
    }

    /// <summary>
    /// Makes sure <paramref name="directory"/> can hold pins: mounts bpffs on
    /// /sys/fs/bpf when the directory lies under it and nothing is mounted there yet,
    /// then creates the directory (mode 0700: pins are for root only).
    /// The path is resolved first (a link to a folder elsewhere is judged where it leads, and
    /// never makes this mount a second bpffs over one that is there), and the pin root and
    /// every parent of it on bpffs must be trustworthy (<see cref="CheckTrusted"/>): whoever can
    /// write there could take the pin root's lock for ever, or move pins away.
    /// </summary>
    /// <returns>True when this call created the directory (so a caller that fails later can remove it).</returns>
    /// <exception cref="BpfException">bpffs is absent and cannot be mounted, the directory is not on bpffs, or it (or a parent on bpffs) is not safe to use.</exception>
    public static bool EnsureDirectory(string directory)
    {
        string full = Path.GetFullPath(directory);
        string? existing = full;
        while (existing is not null && !Path.Exists(existing))
            existing = Path.GetDirectoryName(existing);
        existing ??= "/";
        string resolved = Libc.RealPath(existing) ?? existing;
        // What is still to be created, below the resolved part.
        string target = existing == full ? resolved : Path.Join(resolved, Path.GetRelativePath(existing, full));

        if (!IsBpfFs(resolved))
        {
            bool underDefault = IsUnder(target, DefaultMountPoint);
            string shown = resolved == existing ? existing : $"{existing} (which resolves to {resolved})";
            if (!underDefault || IsBpfFs(DefaultMountPoint))
                throw new BpfException($"use {full} for BPF pins", Errnos.ENOTSUPP, $"{shown} is not on a bpf filesystem; {ChooseFolderHint(full)}");
            Mount();
        }

        CheckTrusted(target);
        if (Directory.Exists(target))
            return false;
        try
        {
            Directory.CreateDirectory(target, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            return true;
        }
        catch (UnauthorizedAccessException e)
        {
            throw new BpfException($"create pin directory {full}", Errnos.EACCES, null, e);
        }
    }

    private static bool IsUnder(string path, string directory)
        => path == directory || path.StartsWith(directory + "/", StringComparison.Ordinal);

    private const uint S_IFMT = 0xF000, S_IFDIR = 0x4000, S_ISVTX = 0x200, S_IWGRP = 0x10, S_IWOTH = 0x2;

    /// <summary>
    /// Refuses a pin root that someone other than root (or this process's own user) could
    /// change: the pin root itself, where it exists, and each existing parent on bpffs must be
    /// a directory owned by root or by the caller. The pin root must not be writable by group
    /// or others; a parent may be only when it is root's and sticky (as /sys/fs/bpf is when
    /// mounted without a mode: others may add folders there, but not move or remove ours).
    /// </summary>
    /// <exception cref="BpfException">EPERM naming the directory, its owner and mode, and the commands that fix it.</exception>
    public static void CheckTrusted(string pinRoot)
    {
        uint self = Libc.geteuid();
        string? current = Path.GetFullPath(pinRoot);
        bool isPinRoot = true;
        while (current is not null && (isPinRoot || !Path.Exists(current) || IsBpfFs(current)))
        {
            if (Libc.TryGetOwnerAndMode(current, out uint uid, out uint mode))
            {
                string? problem = (mode & S_IFMT) != S_IFDIR ? "is not a directory"
                    : uid != 0 && uid != self ? $"belongs to uid {uid}, not root"
                    : (mode & (S_IWGRP | S_IWOTH)) == 0 ? null
                    : !isPinRoot && uid == 0 && (mode & S_ISVTX) != 0 ? null
                    : $"is writable by {((mode & S_IWOTH) != 0 ? "every user" : "its group")} (mode {Convert.ToString(mode & 0xFFF, 8).PadLeft(4, '0')})";
                if (problem is not null)
                {
                    string which = isPinRoot ? "the pin root" : $"a parent of the pin root {pinRoot}";
                    string fix = (mode & S_IFMT) != S_IFDIR ? $"remove it or choose another pin root"
                        : isPinRoot ? $"if nobody else should use it: chown root:root {current} && chmod 0700 {current}; or remove it (rmdir) so that it is created afresh"
                        : $"chown root:root {current} && chmod 0755 {current}, or mount bpffs with a safe mode ('mount -t bpf -o mode=0700 bpf {DefaultMountPoint}')";
                    throw new BpfException($"use {current} as {which}", Errnos.EPERM,
                        $"{current} {problem}, so another user could lock it for ever or move its pins away; {fix}");
                }
            }
            isPinRoot = false;
            current = Path.GetDirectoryName(current);
        }
    }

    /// <summary>Mounts bpffs on /sys/fs/bpf, readable and writable by root only (mode 0700).</summary>
    public static void Mount()
    {
        if (!Directory.Exists(DefaultMountPoint))
            throw new BpfException($"mount bpffs on {DefaultMountPoint}", Errnos.ENOENT,
                $"{DefaultMountPoint} does not exist (is /sys mounted?)");
        nint options = Marshal.StringToCoTaskMemUTF8("mode=0700");
        int result;
        try
        {
            result = Libc.mount("bpf", DefaultMountPoint, "bpf", 0, options);
        }
        finally
        {
            Marshal.FreeCoTaskMem(options);
        }
        if (result != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new BpfException($"mount bpffs on {DefaultMountPoint}", errno,
                errno is Errnos.EPERM or Errnos.EACCES
                    ? $"bpffs is not mounted and this process may not mount it; run as root, or have an administrator run 'mount -t bpf bpf {DefaultMountPoint}'"
                    : $"bpffs is not mounted; run 'mount -t bpf bpf {DefaultMountPoint}'");
        }
    }

    /// <summary>Removes a pin; false when nothing was pinned there.</summary>
    public static bool Unpin(string path)
    {
        try
        {
            if (!File.Exists(path))
                return false;
            File.Delete(path);
            return true;
        }
        catch (UnauthorizedAccessException e)
        {
            throw new BpfException($"unpin {path}", Errnos.EACCES, null, e);
        }
    }

    internal static string? PinHint(string path)
    {
        string? directory = Path.GetDirectoryName(path);
        if (directory is not null && Directory.Exists(directory) && !IsBpfFs(directory))
            return $"{directory} is not on a bpf filesystem; {ChooseFolderHint(path)}";
        return null;
    }

    /// <summary>
    /// What to do about a pin path that is not on bpffs: pick a folder under a bpffs mount that
    /// exists (mounting bpffs over the folder given would hide what is in it, /tmp for instance).
    /// </summary>
    internal static string ChooseFolderHint(string path)
    {
        string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(path)) is { Length: > 0 } n ? n : "NAME";
        string? mount = MountPoints().FirstOrDefault(m => m == DefaultMountPoint) ?? MountPoints().FirstOrDefault();
        return mount is null
            ? $"bpffs is not mounted anywhere: mount it on {DefaultMountPoint} ('mount -t bpf -o mode=0700 bpf {DefaultMountPoint}') and choose a folder there, e.g. {DefaultMountPoint}/{name}"
            : $"choose a folder under a bpffs mount, e.g. {Path.Join(mount, name)}";
    }

    /// <summary>Where bpffs is mounted in this process's mount namespace (/proc/self/mountinfo), or none when that cannot be read.</summary>
    internal static IEnumerable<string> MountPoints()
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines("/proc/self/mountinfo");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            yield break;
        }
        // "36 35 0:32 / /sys/fs/bpf rw,nosuid - bpf bpf rw,mode=700": the type follows the " - " separator.
        foreach (string line in lines)
        {
            int separator = line.IndexOf(" - ", StringComparison.Ordinal);
            string[] fields = line.Split(' ');
            if (separator < 0 || fields.Length < 5 || !line.AsSpan(separator + 3).StartsWith("bpf ", StringComparison.Ordinal))
                continue;
            yield return fields[4].Replace("\040", " ", StringComparison.Ordinal);
        }
    }
}
