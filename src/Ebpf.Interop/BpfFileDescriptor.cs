using System.Runtime.InteropServices;
using Interop;

namespace TcpFreeze.Ebpf.Interop;

/// <summary>
/// Owns one file descriptor that refers to a kernel BPF object (a map, a program, or
/// a BTF blob). The kernel object lives as long as some descriptor, pin or attachment
/// refers to it; disposing this handle only drops this process's reference.
/// </summary>
public sealed class BpfFileDescriptor : SafeHandle
{
    /// <summary>Creates an invalid handle (used by the marshaller).</summary>
    public BpfFileDescriptor() : base(-1, ownsHandle: true)
    {
    }

    internal BpfFileDescriptor(int fd) : base(-1, ownsHandle: true) => SetHandle(fd);

    /// <inheritdoc />
    public override bool IsInvalid => (int)handle < 0;

    /// <summary>The raw descriptor number, valid while this handle is not disposed.</summary>
    public int Value
    {
        get
        {
            ObjectDisposedException.ThrowIf(IsClosed, this);
            return (int)handle;
        }
    }

    /// <summary>Takes a reference for the duration of a native call.</summary>
    internal Lease Borrow() => new(this);

    /// <inheritdoc />
    protected override bool ReleaseHandle() => Libc.close((int)handle) == 0;

    /// <summary>Keeps the descriptor open while a native call uses its number.</summary>
    internal readonly ref struct Lease
    {
        private readonly BpfFileDescriptor _owner;

        public Lease(BpfFileDescriptor owner)
        {
            bool added = false;
            owner.DangerousAddRef(ref added);
            _owner = owner;
            Fd = (int)owner.DangerousGetHandle();
        }

        public int Fd { get; }

        public void Dispose() => _owner.DangerousRelease();
    }
}
