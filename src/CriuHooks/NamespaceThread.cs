using System.Diagnostics;
using System.Runtime.ExceptionServices;
using Interop;

namespace TcpFreeze.CriuHooks;

/// <summary>
/// Starts a process in another process's network namespace. The library keeps its
/// "run this inside" internal (<see cref="NetworkNamespace"/> explains the thread-pool
/// leak it prevents); the hook needs exactly one thing in there, starting nft, so it has
/// this one operation: a dedicated thread enters the namespace, calls Process.Start, and ends.
/// </summary>
internal static class NamespaceThread
{
    public static Process? StartProcess(int pid, ProcessStartInfo info)
    {
        string path = $"/proc/{pid}/ns/net";
        using FileDescriptorHandle fd = Libc.open(path, Libc.O_RDONLY | Libc.O_CLOEXEC);
        if (fd.IsInvalid)
            throw new HookException($"open the network namespace of PID {pid} ({path}): {NativeErrorText()}");
        Process? started = null;
        ExceptionDispatchInfo? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                if (Libc.setns(fd, Libc.CLONE_NEWNET) != 0)
                    throw new HookException($"enter the network namespace of PID {pid} ({path}): {NativeErrorText()}");
                started = Process.Start(info);
            }
            catch (Exception e)
            {
                failure = ExceptionDispatchInfo.Capture(e);
            }
        }, maxStackSize: 1 << 20)
        {
            IsBackground = true,
            Name = "tcpfreeze-netns",
        };
        thread.Start();
        thread.Join();
        failure?.Throw();
        return started;
    }

    private static string NativeErrorText()
        => new System.ComponentModel.Win32Exception(System.Runtime.InteropServices.Marshal.GetLastPInvokeError()).Message;
}
