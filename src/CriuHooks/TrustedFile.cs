using System.Runtime.InteropServices;
using Interop;
using Microsoft.Win32.SafeHandles;
using TcpFreeze.Native;

namespace TcpFreeze.CriuHooks;

/// <summary>Why <see cref="TrustedFile"/> refused a file.</summary>
internal enum FileRefusal
{
    /// <summary>Nothing is there (ENOENT).</summary>
    Missing,

    /// <summary>The name is a symbolic link (ELOOP under O_NOFOLLOW).</summary>
    Link,

    /// <summary>open(2) failed otherwise; see <see cref="FileRefusedException.Errno"/>.</summary>
    OpenFailed,

    /// <summary>statx(2) on the open descriptor failed.</summary>
    StatFailed,

    /// <summary>A FIFO, a device, a directory or a socket; see <see cref="FileRefusedException.Type"/>.</summary>
    NotRegular,

    /// <summary>Larger than the caller's limit; see <see cref="FileRefusedException.Size"/>.</summary>
    TooLarge,

    /// <summary>It grew past the limit while it was read.</summary>
    GrewTooLarge,

    /// <summary>read(2) failed.</summary>
    ReadFailed,

    /// <summary>A user other than root could change it, or a folder on its path; the message says who and how.</summary>
    Untrusted,
}

/// <summary>
/// A file <see cref="TrustedFile"/> would not read or open. Callers that have their own words for a
/// case (the manifest reader) switch on <see cref="Reason"/>; others use <see cref="Exception.Message"/>,
/// which names the file and what is wrong.
/// </summary>
internal sealed class FileRefusedException(FileRefusal reason, string path, string message, int errno = 0, int type = 0, long size = 0, Exception? inner = null)
    : IOException(message, inner)
{
    public FileRefusal Reason { get; } = reason;

    public string Path { get; } = path;

    public int Errno { get; } = errno;

    /// <summary>The S_IF* type, for <see cref="FileRefusal.NotRegular"/>.</summary>
    public int Type { get; } = type;

    /// <summary>The size, for <see cref="FileRefusal.TooLarge"/>.</summary>
    public long Size { get; } = size;
}

/// <summary>
/// Reading and opening files whose names the hook does not control alone (the manifest in CRIU's
/// images directory, the settings file, the log file), so that what is planted there can neither hang
/// the hook (a FIFO opens and reads without blocking under O_NONBLOCK, and is then refused by type),
/// nor make it read without end (a link to /dev/zero is refused by O_NOFOLLOW, a regular file by size),
/// nor make it, running as root, act on a file another user chose (<see cref="OwnershipProblem"/>,
/// the rule of sshd's StrictModes).
/// </summary>
internal static class TrustedFile
{
    private const uint S_ISVTX = 0x200, S_IWGRP = 0x10, S_IWOTH = 0x2;

    /// <summary>
    /// Reads <paramref name="path"/> whole: opened without following a link at its last component and
    /// without blocking, and read only when the descriptor is a regular file of at most
    /// <paramref name="maximumSize"/> bytes. With <paramref name="requireTrustedOwner"/>, the file must also
    /// be one that only root (or this process's user) can change: owned by them, not writable by group or
    /// others; its folders are the caller's to check (<see cref="CheckFolders"/>).
    /// </summary>
    /// <exception cref="FileRefusedException">The file was refused; <see cref="FileRefusedException.Reason"/> says why.</exception>
    public static byte[] ReadRegular(string path, long maximumSize, string what, bool requireTrustedOwner = false)
    {
        using FileDescriptorHandle descriptor = Libc.open(path, Libc.O_RDONLY | Libc.O_NOFOLLOW | Libc.O_NONBLOCK | Libc.O_CLOEXEC);
        if (descriptor.IsInvalid)
            throw OpenFailure(path, what, Marshal.GetLastPInvokeError());
        // The descriptor stays owned by the FileDescriptorHandle above; this view only reads through it.
        int fd = (int)descriptor.DangerousGetHandle();
        using var handle = new SafeFileHandle(fd, ownsHandle: false);
        (int type, long size, uint uid, uint permissions) = Stat(fd, path, what);
        if (type != Libc.S_IFREG)
            throw new FileRefusedException(FileRefusal.NotRegular, path, $"{what} {path} is {TypeName(type)}, not a regular file; put a regular file there", type: type);
        if (requireTrustedOwner && OwnershipProblem(uid, permissions, allowSticky: false) is { } problem)
            throw new FileRefusedException(FileRefusal.Untrusted, path,
                $"{what} {path} {problem}, so another user could change what the hook (running as root) does; " +
                $"make it root's and not writable by others: chown root {path} && chmod go-w {path}");
        if (size > maximumSize)
            throw new FileRefusedException(FileRefusal.TooLarge, path, $"{what} {path} is {size} bytes, more than the {maximumSize} it may be", size: size);
        try
        {
            // Read to the end but never past the limit: the file may grow while it is read.
            byte[] buffer = new byte[size + 1];
            int length = 0;
            while (length < buffer.Length)
            {
                int read = RandomAccess.Read(handle, buffer.AsSpan(length), length);
                if (read == 0)
                    break;
                length += read;
                if (length == buffer.Length && buffer.Length <= maximumSize)
                    Array.Resize(ref buffer, (int)Math.Min(maximumSize + 1, (long)buffer.Length * 2));
            }
            if (length > maximumSize)
                throw new FileRefusedException(FileRefusal.GrewTooLarge, path, $"{what} {path} grew past {maximumSize} bytes while it was read");
            return buffer[..length];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException && e is not FileRefusedException)
        {
            throw new FileRefusedException(FileRefusal.ReadFailed, path, $"cannot read {what} {path} ({e.Message})", inner: e);
        }
    }

    /// <summary>
    /// Opens <paramref name="path"/> for appending, creating it (mode 0600) when missing, for a log that root
    /// writes: only when its folder and every folder above it is one that only root (or this process's user)
    /// can change (<see cref="CheckFolders"/>, the log's own folder without the sticky-bit exception: in /tmp
    /// another user could have put the file there first), never through a link (O_NOFOLLOW) and never into
    /// anything but a regular file (O_NONBLOCK: a FIFO without a reader fails at once instead of blocking).
    /// </summary>
    /// <exception cref="FileRefusedException">
    /// <see cref="FileRefusal.Untrusted"/>, <see cref="FileRefusal.Link"/> or <see cref="FileRefusal.NotRegular"/> when
    /// someone may have planted it; <see cref="FileRefusal.Missing"/> or <see cref="FileRefusal.OpenFailed"/> otherwise.
    /// </exception>
    public static FileDescriptorHandle OpenForAppend(string path, string what)
    {
        string folder = System.IO.Path.GetDirectoryName(path) ?? "/";
        string resolved = Libc.RealPath(folder)
            ?? throw OpenFailure(path, what, Marshal.GetLastPInvokeError(), $"its folder {folder}");
        CheckFolders(resolved, path, what, stickyFolderAllowed: false);
        // The folder is resolved and trusted: opening through the resolved name means no folder link is followed after the check.
        string target = System.IO.Path.Join(resolved, System.IO.Path.GetFileName(path));
        FileDescriptorHandle descriptor = Libc.open(target,
            Libc.O_WRONLY | Libc.O_CREAT | Libc.O_APPEND | Libc.O_NOFOLLOW | Libc.O_NONBLOCK | Libc.O_CLOEXEC, 0x180 /* 0600 */);
        if (descriptor.IsInvalid)
        {
            int errno = Marshal.GetLastPInvokeError();
            descriptor.Dispose();
            throw OpenFailure(path, what, errno);
        }
        try
        {
            (int type, _, _, _) = Stat((int)descriptor.DangerousGetHandle(), path, what);
            if (type != Libc.S_IFREG)
                throw new FileRefusedException(FileRefusal.NotRegular, path, $"{what} {path} is {TypeName(type)}, not a regular file; remove it, or name another file", type: type);
            return descriptor;
        }
        catch
        {
            descriptor.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Refuses <paramref name="folder"/> (an existing, resolved folder) or any folder above it that a user other
    /// than root (or this process's user) could change: owned by another uid, or writable by group or others. A
    /// parent that is root's and sticky (/tmp, /sys/fs/bpf) is accepted: others may add names there but not
    /// rename or remove ours; so is <paramref name="folder"/> itself when <paramref name="stickyFolderAllowed"/>.
    /// </summary>
    /// <exception cref="FileRefusedException"><see cref="FileRefusal.Untrusted"/>, naming the folder, the problem and the fix.</exception>
    public static void CheckFolders(string folder, string file, string what, bool stickyFolderAllowed = true)
    {
        bool first = true;
        for (string? current = folder; current is not null; current = System.IO.Path.GetDirectoryName(current), first = false)
        {
            if (!Libc.TryGetOwnerAndMode(current, out uint uid, out uint mode))
                continue; // gone meanwhile: the open that follows fails on its own
            if (OwnershipProblem(uid, mode & 0xFFF, allowSticky: stickyFolderAllowed || !first) is not { } problem)
                continue;
            string fix = uid != 0 && uid != Libc.geteuid() ? $"chown root {current} && chmod go-w {current}" : $"chmod go-w {current}";
            throw new FileRefusedException(FileRefusal.Untrusted, file,
                $"{what} {file} is in {(first ? "the folder" : "a folder under")} {current}, which {problem}, so another user could replace " +
                $"or redirect it; make every folder on its path root's and not writable by others: {fix}");
        }
    }

    /// <summary>
    /// Why a file or folder with this owner and these permission bits could be changed by a user other than
    /// root or this process's user, or null when it could not.
    /// </summary>
    internal static string? OwnershipProblem(uint uid, uint permissions, bool allowSticky)
    {
        if (uid != 0 && uid != Libc.geteuid())
            return $"belongs to uid {uid}, not root";
        if ((permissions & (S_IWGRP | S_IWOTH)) == 0)
            return null;
        if (allowSticky && uid == 0 && (permissions & S_ISVTX) != 0)
            return null;
        return $"is writable by {((permissions & S_IWOTH) != 0 ? "every user" : "its group")} (mode {Convert.ToString(permissions, 8).PadLeft(4, '0')})";
    }

    private static (int Type, long Size, uint Uid, uint Permissions) Stat(int fd, string path, string what)
    {
        if (!Libc.TryStatDescriptor(fd, out int type, out long size, out uint uid, out uint permissions))
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new FileRefusedException(FileRefusal.StatFailed, path, $"cannot stat {what} {path} ({Errnos.Name(errno)}: {Marshal.GetPInvokeErrorMessage(errno)})", errno);
        }
        return (type, size, uid, permissions);
    }

    private static FileRefusedException OpenFailure(string path, string what, int errno, string? subject = null) => errno switch
    {
        Errnos.ENOENT => new FileRefusedException(FileRefusal.Missing, path,
            subject is null ? $"{what} {path} does not exist" : $"cannot open {what} {path}: {subject} does not exist", errno),
        Errnos.ELOOP when subject is null => new FileRefusedException(FileRefusal.Link, path,
            $"{what} {path} is a symbolic link, which the hook does not follow there; put a regular file in its place (cp --remove-destination \"$(readlink -f {path})\" {path})", errno),
        _ => new FileRefusedException(FileRefusal.OpenFailed, path,
            $"cannot open {what} {path}{(subject is null ? "" : $" ({subject})")} ({Errnos.Name(errno)}: {Marshal.GetPInvokeErrorMessage(errno)})", errno),
    };

    /// <summary>Words for an S_IF* file type.</summary>
    internal static string TypeName(int type) => type switch
    {
        Libc.S_IFDIR => "a directory",
        Libc.S_IFIFO => "a FIFO",
        Libc.S_IFCHR => "a character device",
        Libc.S_IFBLK => "a block device",
        Libc.S_IFSOCK => "a socket",
        _ => $"a file of type 0{Convert.ToString(type >> 12, 8)}",
    };
}
