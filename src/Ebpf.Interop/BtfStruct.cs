using System.Runtime.InteropServices;

namespace TcpFreeze.Ebpf.Interop;

/// <summary>A struct's layout read from BTF.</summary>
public sealed record BtfStruct(string Name, int Size, IReadOnlyList<BtfMember> Members)
{
    /// <summary>The byte offset of member <paramref name="memberName"/>.</summary>
    public int OffsetOf(string memberName)
        => Members.FirstOrDefault(m => m.Name == memberName)?.Offset
           ?? throw new KeyNotFoundException($"struct {Name} has no member '{memberName}'");
}
