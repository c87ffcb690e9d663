using System.Runtime.InteropServices;

namespace TcpFreeze.Ebpf.Interop;

/// <summary>One member of a <see cref="BtfStruct"/>.</summary>
public sealed record BtfMember(string Name, int Offset);
