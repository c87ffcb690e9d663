using System.Runtime.InteropServices;

namespace TcpFreeze.Interop;

/// <summary>
/// Owns one file descriptor that TcpFreeze opened itself (a directory being listed, a
/// netlink socket) and closes it on dispose, also when an exception unwinds past it.
/// </summary>
internal sealed class FileDescriptorHandle : SafeHandle
{
    /// <summary>Creates an invalid handle; the source-generated marshaller sets the descriptor.</summary>
    public FileDescriptorHandle() : base(-1, ownsHandle: true)
    {
    }

    /// <inheritdoc />
    public override bool IsInvalid => (int)handle < 0;

    /// <inheritdoc />
    protected override bool ReleaseHandle() => Libc.close((int)handle) == 0;
}
