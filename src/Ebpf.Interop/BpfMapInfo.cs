namespace TcpFreeze.Ebpf.Interop;

/// <summary>A map's definition as the kernel reports it (read once, when the map is opened).</summary>
public sealed record BpfMapInfo(uint Id, BpfMapType Type, uint KeySize, uint ValueSize, uint MaxEntries, uint Flags, string Name)
{
    /// <summary>Whether lookups return one value per possible CPU.</summary>
    public bool IsPerCpu => Type is BpfMapType.PerCpuHash or BpfMapType.PerCpuArray or BpfMapType.LruPerCpuHash;
}
