namespace Ebpf.Interop;

/// <summary>Loading a BPF object failed; <see cref="VerifierLog"/> holds what libbpf and the verifier said.</summary>
public sealed class BpfLoadException : BpfException
{
    /// <summary>Creates the exception with the captured libbpf/verifier log.</summary>
    public BpfLoadException(string operation, int errno, string verifierLog)
        : base(operation, errno, string.IsNullOrWhiteSpace(verifierLog) ? null : "the verifier log follows:" + Environment.NewLine + Tail(verifierLog))
    {
        VerifierLog = verifierLog;
    }

    /// <summary>Everything libbpf logged during the load, including the verifier's log on rejection.</summary>
    public string VerifierLog { get; }

    private static string Tail(string log) => log.Length <= 4000 ? log : "..." + log[^4000..];
}
