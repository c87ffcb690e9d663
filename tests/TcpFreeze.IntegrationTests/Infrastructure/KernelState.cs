using TcpFreeze.Ebpf.Interop;

namespace TcpFreeze.Tests.Infrastructure;

/// <summary>What the kernel holds for TcpFreeze in a namespace, checked with the kernel itself.</summary>
public static class KernelState
{
    /// <summary>No pins under the options' pin directory, no TcpFreeze XDP program and no TcpFreeze TC filter on any interface.</summary>
    public static void AssertNothingLeft(NetworkNamespace ns, FreezerOptions options)
    {
        string directory = TcpFreezer.GetPinDirectory(options);
        Assert.False(Directory.Exists(directory) && Directory.EnumerateFileSystemEntries(directory).Any(), $"pins remain in {directory}");
        ns.Run(() =>
        {
            foreach (NetworkInterfaceInfo nic in NetworkInterfaceInfo.List())
            {
                XdpStatus xdp = Xdp.Query(nic.Index);
                if (xdp.ProgramId != 0)
                {
                    using BpfProgram? program = BpfProgram.TryOpenById(xdp.ProgramId);
                    Assert.NotEqual("tf_xdp_ingress", program?.Info.Name);
                }
                Assert.Equal(0u, Tc.Query(nic.Index, TcDirection.Egress, BpfNames.TcHandle, BpfNames.TcPriority));
                // A foreign filter may sit at TcpFreeze's ingress handle (a test puts one there); ours may not.
                uint ingress = Tc.Query(nic.Index, TcDirection.Ingress, BpfNames.TcHandle, BpfNames.TcPriority);
                if (ingress != 0)
                {
                    using BpfProgram? program = BpfProgram.TryOpenById(ingress);
                    Assert.NotEqual(BpfNames.TcIngressProgram, program?.Info.Name);
                }
            }
        });
    }
}
