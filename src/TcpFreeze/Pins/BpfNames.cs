namespace TcpFreeze;

/// <summary>
/// Names and numbers shared with bpf/tcpfreeze.bpf.c. <see cref="KernelObjects"/> puts the
/// names together with pins, sizes and capacities into one table.
/// </summary>
internal static class BpfNames
{
    public const string ObjectResource = "TcpFreeze.tcpfreeze.bpf.o";
    public const string ConnectionsMap = "tf_connections";
    public const string EndpointsMap = "tf_endpoints";
    public const string CountersMap = "tf_counters";
    public const string ConfigMap = "tf_config";
    public const string ReplayMap = "tf_replay";
    public const string LocalReplayMap = "tf_replay_local";
    public const string XdpProgram = "tf_xdp_ingress";
    public const string TcProgram = "tf_tc_egress";
    public const string TcIngressProgram = "tf_tc_ingress";
    public const string L3IngressProgram = "tf_l3_ingress";
    public const string L3EgressProgram = "tf_l3_egress";

    /// <summary>
    /// TC filter identity of the egress program, and of the ingress program when it runs
    /// as a TC filter (the two hooks are separate, so they share it), and of the L3
    /// programs on L3 devices (which never run the other two): a handle of our own and
    /// an early priority.
    /// </summary>
    public const uint TcHandle = 0x7F5A;
    public const uint TcPriority = 2;

    public const int CounterSeen = 0, CounterDroppedIngress = 1, CounterDroppedEgress = 2, CounterPassed = 3;

    /// <summary>The compiled kernel programs, embedded in this assembly by the build.</summary>
    public static byte[] LoadObject()
    {
        using Stream stream = typeof(BpfNames).Assembly.GetManifestResourceStream(ObjectResource)
            ?? throw new InvalidOperationException($"The embedded BPF object '{ObjectResource}' is missing; the build did not compile bpf/tcpfreeze.bpf.c.");
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        return bytes;
    }
}
