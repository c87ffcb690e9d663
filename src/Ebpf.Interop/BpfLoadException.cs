using TcpFreeze.Native;

namespace TcpFreeze.Ebpf.Interop;

/// <summary>Loading a BPF object failed; <see cref="VerifierLog"/> holds what libbpf and the verifier said.</summary>
public sealed class BpfLoadException : BpfException
{
    /// <summary>Creates the exception with the captured libbpf/verifier log.</summary>
    public BpfLoadException(string operation, int errno, string verifierLog)
        : base(operation, errno, HintFor(errno, verifierLog))
    {
        VerifierLog = verifierLog;
    }

    /// <summary>
    /// EPERM is a missing privilege, never the verifier (which says EACCES or EINVAL): the remedy
    /// goes first, on the line a front end shows, and the log after it.
    /// </summary>
    private static string? HintFor(int errno, string log)
    {
        string? remedy = errno == Errnos.EPERM || string.IsNullOrWhiteSpace(log) ? Errnos.Hint(errno) : null;
        string? details = string.IsNullOrWhiteSpace(log) ? null : "the verifier log follows:" + Environment.NewLine + Tail(log);
        return remedy is null ? details : details is null ? remedy : $"{remedy}; {details}";
    }

    /// <summary>Everything libbpf logged during the load, including the verifier's log on rejection.</summary>
    public string VerifierLog { get; }

    private static string Tail(string log) => log.Length <= 4000 ? log : "..." + log[^4000..];
}
