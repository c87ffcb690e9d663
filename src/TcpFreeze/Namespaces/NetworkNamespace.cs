using System.Globalization;
using System.Net.Sockets;
using TcpFreeze.Ebpf.Interop;
using Interop;
using TcpFreeze.Native;

namespace TcpFreeze;

/// <summary>
/// A network namespace to work in. Interface lookups, XDP and TC attachment, and
/// socket creation all act on the calling thread's namespace, so TcpFreeze's work for
/// another namespace runs on a dedicated thread that enters it with setns(2) and ends
/// with the work; the caller's threads never change namespace.
/// <para>
/// <b>No arbitrary code runs inside.</b> A thread inherits the namespace of the thread
/// that creates it, and .NET's thread pool creates its workers from whichever thread
/// queues work: a user delegate run in the namespace that queued pool work (an async
/// lambda, a <c>Task.Run(...).Result</c>) would leave pool threads in the target
/// namespace for the rest of the process. So this type offers operations, not a
/// "run my delegate there": <see cref="OpenSocket"/> makes a socket that belongs to the
/// namespace (bind, connect, listen and accept on it from any thread), and
/// <see cref="TcpFreezer"/> takes the namespace through <see cref="FreezerOptions.Namespace"/>.
/// Log messages that TcpFreeze writes while inside are handed to the
/// <see cref="FreezerOptions.LoggerFactory"/>'s loggers only after the dedicated thread
/// has ended, on the calling thread, so user logging code never runs in the namespace either.
/// </para>
/// <para>
/// Thread safety: instances are immutable after construction and safe to use from any
/// number of threads at once.
/// </para>
/// <para>
/// The namespace file is opened once, at first use, and the descriptor is kept: later
/// uses enter that same namespace even if the path (a /proc/PID/ns/net of a PID that
/// was reused, a /run/netns name that was re-created) now names another one. The
/// cookie is read once too.
/// </para>
/// </summary>
public sealed class NetworkNamespace
{
    private readonly Lazy<FileDescriptorHandle>? _descriptor;
    private readonly Lazy<ulong> _cookie;

    private NetworkNamespace(string? path)
    {
        Path = path;
        if (path is not null)
            _descriptor = new Lazy<FileDescriptorHandle>(() => Open(path), LazyThreadSafetyMode.ExecutionAndPublication);
        _cookie = new Lazy<ulong>(() => Run(ReadCookie), LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>The namespace of the calling thread.</summary>
    public static NetworkNamespace Current { get; } = new(null);

    /// <summary>The namespace file this refers to (e.g. /run/netns/NAME), or null for the current namespace.</summary>
    public string? Path { get; }

    /// <summary>A namespace named by a file such as /run/netns/NAME or /proc/PID/ns/net.</summary>
    public static NetworkNamespace FromPath(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return new NetworkNamespace(path);
    }

    /// <summary>The namespace of process <paramref name="pid"/>.</summary>
    public static NetworkNamespace FromProcess(int pid) => new($"/proc/{pid}/ns/net");

    /// <summary>A namespace created with 'ip netns add NAME'.</summary>
    public static NetworkNamespace Named(string name) => new($"/run/netns/{name}");

    /// <summary>
    /// The namespace's cookie (SO_NETNS_COOKIE): a number the kernel never reuses for
    /// another namespace until reboot, unlike inode numbers. TcpFreeze keys its pins by it.
    /// Read once (the Current namespace's cookie is the calling thread's at first use).
    /// </summary>
    /// <exception cref="TcpFreezeException">The namespace cannot be entered, or the kernel has no SO_NETNS_COOKIE.</exception>
    public ulong Cookie => Path is null ? ReadCookieGuarded() : TcpFreezeException.Guard(() => _cookie.Value);

    /// <summary>
    /// Opens a socket that belongs to this namespace: the socket(2) call alone runs inside
    /// it, so binding, connecting, listening and accepting on the socket afterwards (from any
    /// thread, synchronously or asynchronously) all happen in this namespace.
    /// </summary>
    /// <exception cref="TcpFreezeException">The namespace cannot be entered, or the socket cannot be made there.</exception>
    public Socket OpenSocket(AddressFamily addressFamily, SocketType socketType, ProtocolType protocolType)
        => Run(() => TcpFreezeException.Guard(() =>
        {
            try
            {
                return new Socket(addressFamily, socketType, protocolType);
            }
            catch (SocketException e)
            {
                throw new TcpFreezeException($"open a {addressFamily} {socketType} socket in {this}", $"{e.SocketErrorCode}: {e.Message}");
            }
        }));

    /// <summary>Log calls made on a namespace thread, to be replayed on the caller's thread (see the type's remarks).</summary>
    [ThreadStatic] private static List<Action>? t_deferred;

    /// <summary>
    /// The queue of the namespace thread the caller runs on, or null outside one. Loggers that wrap
    /// user code (<see cref="FreezerOptions.CreateLogger"/>) put their calls here instead of making them.
    /// </summary>
    internal static List<Action>? DeferredOnThisThread => t_deferred;

    /// <summary>
    /// Runs <paramref name="work"/> inside this namespace and returns its result. Internal on
    /// purpose (see the type's remarks): <paramref name="work"/> must never create threads or
    /// queue thread-pool work, and must call no user code except through deferring loggers.
    /// </summary>
    /// <exception cref="TcpFreezeException">The namespace cannot be entered; exceptions of <paramref name="work"/> pass unchanged.</exception>
    internal T Run<T>(Func<T> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        if (Path is null)
            return work();
        if (!_descriptor!.IsValueCreated && !File.Exists(Path))
            throw new TcpFreezeException($"enter network namespace {Path}", $"{Path} does not exist; name an existing namespace (ip netns list) or a /proc/PID/ns/net file");
        FileDescriptorHandle descriptor = TcpFreezeException.Guard(() => _descriptor.Value);

        T? result = default;
        Exception? failure = null;
        var deferred = new List<Action>();
        var thread = new Thread(() =>
        {
            t_deferred = deferred;
            try
            {
                Enter(descriptor, Path);
            }
            catch (NativeCallException e)
            {
                failure = new TcpFreezeException(e);
                return;
            }
            try
            {
                result = work();
            }
            catch (Exception e)
            {
                failure = e;
            }
        }, maxStackSize: 1 << 20)
        {
            IsBackground = true,
            Name = "tcpfreeze-netns",
        };
        thread.Start();
        thread.Join();
        foreach (Action call in deferred)
            call();
        if (failure is not null)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        return result!;
    }

    /// <summary>Runs <paramref name="work"/> inside this namespace (see <see cref="Run{T}(Func{T})"/>).</summary>
    internal void Run(Action work) => Run(() =>
    {
        work();
        return 0;
    });

    /// <summary>Whether this namespace is the calling thread's current namespace.</summary>
    public bool IsCurrent => Path is null || Current.Cookie == Cookie;

    /// <summary>
    /// Whether the calling thread is in <paramref name="pid"/>'s network namespace (both
    /// /proc links name it as "net:[INODE]"). Null when that cannot be told: the process
    /// exited, or this user may not look. The one answer to "is this PID in my namespace?".
    /// </summary>
    public static bool? IsProcessInCallersNamespace(int pid)
    {
        const int LinkBufferSize = 64;
        Span<byte> theirs = stackalloc byte[LinkBufferSize], ours = stackalloc byte[LinkBufferSize];
        int theirLength = Libc.ReadLink($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/ns/net", theirs);
        int ourLength = Libc.ReadLink("/proc/thread-self/ns/net", ours);
        if (theirLength <= 0 || ourLength <= 0)
            return null;
        return theirs[..theirLength].SequenceEqual(ours[..ourLength]);
    }

    /// <inheritdoc />
    public override string ToString() => Path ?? "the current network namespace";

    private static ulong ReadCookieGuarded() => TcpFreezeException.Guard(ReadCookie);

    private static ulong ReadCookie()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        Span<byte> value = stackalloc byte[8];
        int length = socket.GetRawSocketOption(Libc.SOL_SOCKET, Libc.SO_NETNS_COOKIE, value);
        if (length != 8)
            throw new NativeCallException("read the network namespace cookie (SO_NETNS_COOKIE)", Errnos.ENOPROTOOPT,
                "the kernel has no SO_NETNS_COOKIE (added in Linux 5.14)");
        return BitConverter.ToUInt64(value);
    }

    private static FileDescriptorHandle Open(string path)
    {
        FileDescriptorHandle fd = Libc.open(path, Libc.O_RDONLY | Libc.O_CLOEXEC);
        if (fd.IsInvalid)
        {
            var failure = NativeCallException.FromLastError($"open network namespace {path}");
            fd.Dispose();
            throw failure;
        }
        return fd;
    }

    private static void Enter(FileDescriptorHandle fd, string path)
    {
        if (Libc.setns(fd, Libc.CLONE_NEWNET) != 0)
        {
            int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            throw new NativeCallException($"enter network namespace {path}", errno,
                errno == Errnos.EINVAL ? $"{path} is not a network namespace" : null);
        }
    }
}
