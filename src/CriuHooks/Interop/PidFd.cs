using System.Runtime.InteropServices;

namespace TcpFreeze.CriuHooks.Interop;

/// <summary>A process descriptor (pidfd_open): readable once the process has exited. Invalid when the process was gone already.</summary>
internal sealed class PidFd : SafeHandle
{
    public PidFd(int fd) : base(-1, ownsHandle: true) => SetHandle(fd);

    public override bool IsInvalid => (int)handle < 0;

    /// <summary>The descriptor number for poll(2), or -1 when invalid; valid while this handle is not disposed.</summary>
    public int Number => IsInvalid || IsClosed ? -1 : (int)handle;

    protected override bool ReleaseHandle() => Libc.close((int)handle) == 0;
}
