using System.Net.Sockets;
using System.Runtime.InteropServices;
using Ebpf.Interop;
using TcpFreeze.Interop;

namespace TcpFreeze;

/// <summary>
/// A network namespace to work in. Interface lookups, XDP and TC attachment, and
/// socket creation all act on the calling thread's namespace, so work for another
/// namespace runs on a dedicated thread that enters it with setns(2) and ends with
/// the work; the caller's threads never change namespace.
/// </summary>
public sealed class NetworkNamespace
{
    private NetworkNamespace(string? path) => Path = path;

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
    /// </summary>
    public ulong Cookie => Run(static () =>
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        Span<byte> value = stackalloc byte[8];
        int length = socket.GetRawSocketOption(Libc.SOL_SOCKET, Libc.SO_NETNS_COOKIE, value);
        if (length != 8)
            throw new BpfException("read the network namespace cookie (SO_NETNS_COOKIE)", 92, "TcpFreeze needs Linux 5.14 or later");
        return BitConverter.ToUInt64(value);
    });

    /// <summary>Runs <paramref name="work"/> inside this namespace and returns its result.</summary>
    public T Run<T>(Func<T> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        if (Path is null)
            return work();
        if (!File.Exists(Path))
            throw new TcpFreezeException($"enter network namespace {Path}", $"{Path} does not exist; name an existing namespace (ip netns list) or a /proc/PID/ns/net file");

        T? result = default;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                Enter(Path);
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
        if (failure is not null)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        return result!;
    }

    /// <summary>Runs <paramref name="work"/> inside this namespace.</summary>
    public void Run(Action work) => Run(() =>
    {
        work();
        return 0;
    });

    /// <summary>Whether this namespace is the calling thread's current namespace.</summary>
    public bool IsCurrent => Path is null || Current.Cookie == Cookie;

    /// <inheritdoc />
    public override string ToString() => Path ?? "current network namespace";

    private static void Enter(string path)
    {
        int fd = Libc.open(path, Libc.O_RDONLY | Libc.O_CLOEXEC);
        if (fd < 0)
            throw new BpfException($"open network namespace {path}", Marshal.GetLastPInvokeError());
        try
        {
            if (Libc.setns(fd, Libc.CLONE_NEWNET) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                throw new BpfException($"enter network namespace {path}", errno,
                    errno == Errnos.EINVAL ? $"{path} is not a network namespace" : null);
            }
        }
        finally
        {
            Libc.close(fd);
        }
    }
}
