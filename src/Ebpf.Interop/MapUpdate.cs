using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace TcpFreeze.Ebpf.Interop;

/// <summary>Flags for map updates (BPF_ANY, BPF_NOEXIST, BPF_EXIST).</summary>
public enum MapUpdate : ulong
{
    /// <summary>Create the element or replace it.</summary>
    Any = 0,
    /// <summary>Create the element only if the key is absent (EEXIST otherwise).</summary>
    NoExist = 1,
    /// <summary>Replace the element only if the key is present (ENOENT otherwise).</summary>
    Exist = 2,
}
