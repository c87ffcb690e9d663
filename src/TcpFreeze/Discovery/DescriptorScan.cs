using System.Buffers;
using System.Globalization;
using System.Runtime.InteropServices;
using TcpFreeze.Ebpf.Interop;
using Interop;
using TcpFreeze.Native;

namespace TcpFreeze;

/// <summary>The socket inodes a process holds, read from its descriptor table (/proc/PID/task/TID/fd).</summary>
internal static unsafe class DescriptorScan
{
    /// <summary>
    /// Descriptor links are read into a buffer this long. A socket's link,
    /// "socket:[INODE]" with a 32-bit inode, needs 19 bytes; longer targets (paths) are
    /// cut short, and a link that fills the buffer is not a socket.
    /// </summary>
    private const int LinkBufferSize = 64;

    /// <summary>getdents64 buffer: about 1,300 descriptor entries per call.</summary>
    private const int DirectoryBufferSize = 32 * 1024;

    /// <summary>
    /// Adds the socket inodes of every thread's descriptors ("socket:[INODE]" links);
    /// threads normally share one table, but a thread made without CLONE_FILES has its
    /// own. False when the process is gone. With <paramref name="holders"/>, also records for each new
    /// inode the process and descriptor number that hold it.
    /// </summary>
    public static bool CollectSocketInodes(string procRoot, int pid, HashSet<ulong> inodes, string operation,
        Dictionary<ulong, (int Pid, int Fd)>? holders = null)
    {
        string tasks = Path.Combine(ProcessTree.PathOf(procRoot, pid), "task");
        string[] threads;
        try
        {
            threads = Directory.GetDirectories(tasks);
        }
        catch (DirectoryNotFoundException)
        {
            return false;
        }
        bool realProc = procRoot == ProcessSockets.DefaultProcRoot;
        foreach (string thread in threads)
        {
            // Threads normally share the process's table: read it once.
            if (realProc && int.TryParse(Path.GetFileName(thread), NumberStyles.None, CultureInfo.InvariantCulture, out int tid)
                && tid != pid && Interop.Libc.ShareFileTable(pid, tid))
                continue;
            CollectDescriptorTable(Path.Combine(thread, "fd"), pid, inodes, operation, holders);
        }
        return true;
    }

    /// <summary>
    /// Adds the socket inodes of one descriptor table: getdents64 lists it and readlinkat
    /// reads each link into a stack buffer, so a table of thousands of descriptors costs
    /// two system calls per descriptor and no string. A directory that is gone (the
    /// thread exited) adds nothing; descriptors closed meanwhile are skipped.
    /// </summary>
    private static unsafe void CollectDescriptorTable(string fdDirectory, int pid, HashSet<ulong> inodes, string operation,
        Dictionary<ulong, (int Pid, int Fd)>? holders)
    {
        using FileDescriptorHandle directory = Libc.open(fdDirectory, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC);
        if (directory.IsInvalid)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno is Errnos.ENOENT or Errnos.ESRCH or Errnos.ENOTDIR)
                return; // the thread exited
            throw DescriptorsUnreadable(fdDirectory, pid, errno, operation);
        }
        byte* target = stackalloc byte[LinkBufferSize];
        var sockets = new SocketLinks { Pid = pid, Inodes = inodes, Holders = holders, Target = target };
        int failed = VisitEntries(directory, ref sockets);
        if (failed is not (0 or Errnos.ENOENT or Errnos.ESRCH)) // ENOENT, ESRCH: the thread exited while its table was read
            throw DescriptorsUnreadable(fdDirectory, pid, failed, operation);
    }

    /// <summary>
    /// How many descriptors process <paramref name="pid"/>'s table holds (the main thread's), counted from the
    /// directory listing alone: no link is read. 0 when it cannot be listed.
    /// </summary>
    public static int CountDescriptors(string procRoot, int pid)
    {
        using FileDescriptorHandle directory = Libc.open(Path.Combine(ProcessTree.PathOf(procRoot, pid), "fd"), Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC);
        if (directory.IsInvalid)
            return 0;
        var counter = new Counter();
        VisitEntries(directory, ref counter);
        return counter.Count;
    }

    /// <summary>What is done with each entry of a descriptor table: its name (digits, NUL-terminated) during the call.</summary>
    private interface IEntryVisitor
    {
        void Visit(FileDescriptorHandle directory, byte* name);
    }

    /// <summary>
    /// Lists a descriptor table with getdents64 and hands every descriptor's entry to <paramref name="visitor"/>.
    /// Returns 0 at the end, or the errno of a listing that failed (ENOENT or ESRCH: the task exited meanwhile).
    /// </summary>
    private static int VisitEntries<TVisitor>(FileDescriptorHandle directory, ref TVisitor visitor) where TVisitor : struct, IEntryVisitor
    {
        byte[] entries = ArrayPool<byte>.Shared.Rent(DirectoryBufferSize);
        try
        {
            fixed (byte* buffer = entries)
            {
                // Each call returns at least one entry until the end, so this ends; the
                // bound only guards against a directory that never stops growing.
                for (int calls = 0; calls < 1_000_000; calls++)
                {
                    nint length = Libc.getdents64(directory, buffer, (nuint)entries.Length);
                    if (length == 0)
                        return 0;
                    if (length < 0)
                    {
                        int errno = Marshal.GetLastPInvokeError();
                        if (errno == Errnos.EINTR)
                            continue;
                        return errno;
                    }
                    for (nint offset = 0; offset < length;)
                    {
                        byte* record = buffer + offset;
                        ushort recordLength = *(ushort*)(record + Libc.DirentLengthOffset);
                        if (recordLength == 0)
                            break;
                        offset += recordLength;
                        byte* name = record + Libc.DirentNameOffset;
                        if (name[0] != (byte)'.') // "." and ".."; descriptor names are digits
                            visitor.Visit(directory, name);
                    }
                }
                return 0;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(entries);
        }
    }

    /// <summary>Reads each descriptor's link and keeps the socket inodes (and, when asked, who holds each).</summary>
    private struct SocketLinks : IEntryVisitor
    {
        public int Pid;
        public HashSet<ulong> Inodes;
        public Dictionary<ulong, (int Pid, int Fd)>? Holders;
        public byte* Target; // LinkBufferSize bytes

        public void Visit(FileDescriptorHandle directory, byte* name)
        {
            nint linkLength = Libc.readlinkat(directory, name, Target, LinkBufferSize);
            if (linkLength > 0 && linkLength < LinkBufferSize
                && TryParseSocketInode(new ReadOnlySpan<byte>(Target, (int)linkLength), out ulong inode)
                && Inodes.Add(inode) && Holders is not null
                && int.TryParse(new ReadOnlySpan<byte>(name, NameLength(name)), NumberStyles.None, CultureInfo.InvariantCulture, out int fd))
                Holders[inode] = (Pid, fd);
            // < 0: closed meanwhile (ENOENT)
        }
    }

    private struct Counter : IEntryVisitor
    {
        public int Count;

        public void Visit(FileDescriptorHandle directory, byte* name) => Count++;
    }

    private static TcpFreezeException DescriptorsUnreadable(string fdDirectory, int pid, int errno, string operation)
        => errno is Errnos.EACCES or Errnos.EPERM
            ? new TcpFreezeException(operation, ProcessSockets.PermissionDenied(fdDirectory, pid))
            : new TcpFreezeException(operation, $"cannot read {fdDirectory}", new NativeCallException($"list the descriptors in {fdDirectory}", errno));

    /// <summary>The length of a directory entry's NUL-terminated name (a descriptor number: a few digits).</summary>
    private static int NameLength(byte* name)
    {
        int length = 0;
        while (length < 255 && name[length] != 0)
            length++;
        return length;
    }

    /// <summary>Parses a descriptor link "socket:[12345]".</summary>
    public static bool TryParseSocketInode(string? target, out ulong inode)
    {
        inode = 0;
        const string Prefix = "socket:[";
        return target is not null && target.StartsWith(Prefix, StringComparison.Ordinal) && target.EndsWith(']')
            && ulong.TryParse(target.AsSpan(Prefix.Length, target.Length - Prefix.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out inode);
    }

    /// <summary>Parses a descriptor link "socket:[12345]" as readlink returns it (bytes, no NUL).</summary>
    public static bool TryParseSocketInode(ReadOnlySpan<byte> target, out ulong inode)
    {
        inode = 0;
        ReadOnlySpan<byte> prefix = "socket:["u8;
        return target.StartsWith(prefix) && target.Length > prefix.Length + 1 && target[^1] == (byte)']'
            && ulong.TryParse(target[prefix.Length..^1], NumberStyles.None, CultureInfo.InvariantCulture, out inode);
    }
}
