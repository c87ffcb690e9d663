using System.Runtime.InteropServices;
using Interop;
using TcpFreeze.Native;

namespace TcpFreeze.Ebpf.Interop;

/// <summary>Interface names and indexes in the calling thread's network namespace.</summary>
public static unsafe class NetworkInterfaceNames
{
    /// <summary>The index of interface <paramref name="name"/>.</summary>
    /// <exception cref="NativeCallException">ENODEV when there is no such interface (if_nametoindex is no BPF call).</exception>
    public static int GetIndex(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        uint index = Libc.if_nametoindex(name);
        if (index == 0)
            throw new NativeCallException($"find network interface '{name}'", Errnos.ENODEV,
                "no interface of that name in this network namespace ('ip link' lists them)");
        return (int)index;
    }

    /// <summary>The name of interface <paramref name="index"/>, or "ifindex N" if it has none.</summary>
    public static string GetName(int index)
    {
        byte* buffer = stackalloc byte[16];
        return Libc.if_indextoname((uint)index, buffer) == 0 ? $"ifindex {index}" : NativeString.FromFixed(buffer, 16);
    }
}
