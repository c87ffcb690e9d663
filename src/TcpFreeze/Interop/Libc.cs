using System.Runtime.InteropServices;

namespace TcpFreeze.Interop;

/// <summary>The libc calls TcpFreeze makes itself: namespaces, interfaces, locks and the monotonic clock.</summary>
internal static unsafe partial class Libc
{
    private const string Library = "libc";

    internal const int CLONE_NEWNET = 0x40000000;
    internal const int O_RDONLY = 0, O_DIRECTORY = 0x10000, O_CLOEXEC = 0x80000;
    internal const int LOCK_EX = 2, LOCK_UN = 8;
    internal const int CLOCK_MONOTONIC = 1;
    internal const int SOL_SOCKET = 1, SO_NETNS_COOKIE = 71;
    internal const ushort AF_PACKET = 17;
    internal const uint IFF_UP = 0x1;

    [LibraryImport(Library, EntryPoint = "setns", SetLastError = true)]
    internal static partial int setns(FileDescriptorHandle fd, int nstype);

    [LibraryImport(Library, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int open(string path, int flags);

    [LibraryImport(Library, EntryPoint = "close", SetLastError = true)]
    internal static partial int close(int fd);

    [LibraryImport(Library, EntryPoint = "flock", SetLastError = true)]
    internal static partial int flock(FileDescriptorHandle fd, int operation);

    [LibraryImport(Library, EntryPoint = "clock_gettime", SetLastError = true)]
    internal static partial int clock_gettime(int clock, TimeSpec* time);

    [LibraryImport(Library, EntryPoint = "syscall", SetLastError = true)]
    private static partial long syscall(long number, int pid1, int pid2, int type, nuint idx1, nuint idx2);

    private const int KCMP_FILES = 2;

    /// <summary>
    /// Whether two tasks share one file descriptor table (kcmp KCMP_FILES): threads made
    /// with CLONE_FILES do, so their descriptors need reading only once. False when
    /// unsure (unknown architecture, no permission), which only costs a second read.
    /// </summary>
    internal static bool ShareFileTable(int task1, int task2)
    {
        long number = System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture switch
        {
            System.Runtime.InteropServices.Architecture.X64 => 312,
            System.Runtime.InteropServices.Architecture.Arm64 => 272,
            _ => -1,
        };
        return number > 0 && syscall(number, task1, task2, KCMP_FILES, 0, 0) == 0;
    }

    [LibraryImport(Library, EntryPoint = "getifaddrs", SetLastError = true)]
    internal static partial int getifaddrs(IfAddrs** addresses);

    [LibraryImport(Library, EntryPoint = "freeifaddrs")]
    internal static partial void freeifaddrs(IfAddrs* addresses);

    [StructLayout(LayoutKind.Sequential)]
    internal struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    /// <summary>struct ifaddrs.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct IfAddrs
    {
        public IfAddrs* Next;
        public nint Name;
        public uint Flags;
        public SockAddrLl* Address;
        public nint Netmask;
        public nint BroadcastOrDestination;
        public nint Data;
    }

    /// <summary>struct sockaddr_ll (the AF_PACKET entries of getifaddrs).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct SockAddrLl
    {
        public ushort Family;
        public ushort Protocol;
        public int IfIndex;
        public ushort HaType;
        public byte PacketType;
        public byte AddressLength;
        public fixed byte Address[8];
    }

    /// <summary>CLOCK_MONOTONIC in nanoseconds: the clock bpf_ktime_get_ns() reads.</summary>
    internal static ulong MonotonicNanoseconds()
    {
        TimeSpec time;
        if (clock_gettime(CLOCK_MONOTONIC, &time) != 0)
            throw new InvalidOperationException($"clock_gettime(CLOCK_MONOTONIC) failed: errno {Marshal.GetLastPInvokeError()}");
        return (ulong)time.Seconds * 1_000_000_000UL + (ulong)time.Nanoseconds;
    }
}
