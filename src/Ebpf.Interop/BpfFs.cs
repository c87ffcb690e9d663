using System.Runtime.InteropServices;
using Interop;

namespace Ebpf.Interop;

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
    /// </summary>
    /// <returns>True when this call created the directory (so a caller that fails later can remove it).</returns>
    /// <exception cref="BpfException">bpffs is absent and cannot be mounted, or the directory is not on bpffs.</exception>
    public static bool EnsureDirectory(string directory)
    {
        string full = Path.GetFullPath(directory);
        string? existing = full;
        while (existing is not null && !Directory.Exists(existing))
            existing = Path.GetDirectoryName(existing);
        existing ??= "/";

        if (!IsBpfFs(existing))
        {
            bool underDefault = full == DefaultMountPoint || full.StartsWith(DefaultMountPoint + "/", StringComparison.Ordinal);
            if (!underDefault)
                throw new BpfException($"use {full} for BPF pins", Errnos.ENOTSUPP,
                    $"{existing} is not on a bpf filesystem; mount one with 'mount -t bpf bpf {existing}' or choose a directory under {DefaultMountPoint}");
            Mount();
        }

        if (Directory.Exists(full))
            return false;
        try
        {
            Directory.CreateDirectory(full, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            return true;
        }
        catch (UnauthorizedAccessException e)
        {
            throw new BpfException($"create pin directory {full}", Errnos.EACCES, null, e);
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
            return $"{directory} is not on a bpf filesystem (mount -t bpf bpf {DefaultMountPoint})";
        return null;
    }
}
