using System.Runtime.InteropServices;

namespace Interop;

/// <summary>
/// Owns one file descriptor that this process opened itself (a directory being listed, a
/// namespace, a netlink socket, a process descriptor) and closes it on dispose, also when
/// an exception unwinds past it. Invalid when the call that made it failed.
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
