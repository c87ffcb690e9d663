using TcpFreeze.Ebpf.Interop;

namespace TcpFreeze.Tests.Infrastructure;

/// <summary>
/// Another tool's XDP program: it passes every packet and, in the counting form, adds
/// one to a counter of its own per packet, so a test can prove that it still runs and
/// still sees the traffic while TcpFreeze is attached beside it. Built from raw
/// instructions (no clang, no object file).
/// </summary>
public sealed class ForeignXdpProgram : IDisposable
{
    private const int XdpPass = 2;

    private ForeignXdpProgram(BpfProgram program, BpfMap<uint, ulong>? counter)
    {
        Program = program;
        Counter = counter;
    }

    public BpfProgram Program { get; }
    public BpfMap<uint, ulong>? Counter { get; }
    public uint Id => Program.Info.Id;

    /// <summary>Packets the counting program has seen (on every interface it runs on).</summary>
    public ulong Packets => Counter is not null && Counter.TryLookup(0u, out ulong count) ? count : throw new InvalidOperationException("not a counting program");

    /// <summary>mov r0, XDP_PASS; exit</summary>
    public static ForeignXdpProgram Pass(string name = "foreign_pass")
        => new(BpfProgram.Load(BpfProgramType.Xdp, name, [Insn(0xb7, 0, 0, 0, XdpPass), Insn(0x95, 0, 0, 0, 0)]), null);

    /// <summary>Counts each packet in a one-element array map (atomically), then passes it.</summary>
    public static ForeignXdpProgram Counting(string name = "foreign_count")
    {
        BpfMap<uint, ulong> counter = BpfMap.Create(BpfMapType.Array, "foreign_seen", sizeof(uint), sizeof(ulong), 1).As<uint, ulong>();
        try
        {
            int fd = counter.Map.Handle.Value;
            ulong[] instructions =
            [
                Insn(0x62, 10, 0, -4, 0),   // *(u32 *)(r10 - 4) = 0        the key
                Insn(0xbf, 2, 10, 0, 0),    // r2 = r10
                Insn(0x07, 2, 0, 0, -4),    // r2 += -4
                Insn(0x18, 1, 1, 0, fd),    // r1 = the map (ld_imm64, BPF_PSEUDO_MAP_FD)
                0,
                Insn(0x85, 0, 0, 0, 1),     // call bpf_map_lookup_elem
                Insn(0x15, 0, 0, 2, 0),     // if r0 == 0 goto +2
                Insn(0xb7, 1, 0, 0, 1),     // r1 = 1
                Insn(0xdb, 0, 1, 0, 0),     // lock *(u64 *)(r0 + 0) += r1
                Insn(0xb7, 0, 0, 0, XdpPass),
                Insn(0x95, 0, 0, 0, 0),     // exit
            ];
            return new ForeignXdpProgram(BpfProgram.Load(BpfProgramType.Xdp, name, instructions), counter);
        }
        catch
        {
            counter.Dispose();
            throw;
        }
    }

    /// <summary>Attaches it (generic mode) to an interface of <paramref name="ns"/>; it stays until detached or the namespace goes.</summary>
    public void AttachTo(NetworkNamespace ns, string interfaceName)
        => ns.Run(() => Xdp.Attach(Program, NetworkInterfaceNames.GetIndex(interfaceName), XdpMode.Generic));

    /// <summary>The id of the XDP program on an interface of <paramref name="ns"/> (0: none).</summary>
    public static uint AttachedId(NetworkNamespace ns, string interfaceName)
        => ns.Run(() => Xdp.Query(NetworkInterfaceNames.GetIndex(interfaceName)).ProgramId);

    private static ulong Insn(byte opcode, byte dst, byte src, short offset, int immediate)
        => opcode | (ulong)(byte)(src << 4 | dst) << 8 | (ulong)(ushort)offset << 16 | (ulong)(uint)immediate << 32;

    public void Dispose()
    {
        Program.Dispose();
        Counter?.Dispose();
    }
}
