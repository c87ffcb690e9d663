namespace TcpFreeze.Ebpf.Interop;

/// <summary>Facts about the running system that BPF users need.</summary>
public static class BpfSystem
{
    private static int s_possibleCpus;

    /// <summary>The number of possible CPUs (the length of a per-CPU map value).</summary>
    public static int PossibleCpuCount
    {
        get
        {
            if (s_possibleCpus == 0)
                s_possibleCpus = BpfException.Check(Libbpf.libbpf_num_possible_cpus(), "count possible CPUs");
            return s_possibleCpus;
        }
    }
}
