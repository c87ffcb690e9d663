using System.Diagnostics;

namespace TcpFreeze.CriuHooks;

/// <summary>
/// The whole-namespace lock for a task tree in a network namespace of its own (a
/// container with a network of its own, a Kubernetes pod). CRIU locks such a namespace
/// as a whole instead of per connection, but <c>network-lock skip</c>, which the hook
/// needs for the host case, switches that lock off too: without this, every connection
/// that sends while the tasks are down is reset. So the hook puts the same lock back,
/// the way CRIU's nftables mode takes it: one table in that namespace that drops every
/// packet in and out except those of CRIU's repair-mode sockets (mark 0xC114).
/// <para>
/// Its cost does not grow with the number of connections (one <c>nft</c> run per step),
/// so there is nothing for BPF to win here; and a lock that lives in the namespace
/// goes away with it, so a namespace that podman or CRIU removes leaves nothing behind
/// (BPF pins would stay). Taking and releasing are idempotent and atomic (one nft
/// transaction each).
/// </para>
/// </summary>
internal static class NamespaceLock
{
    /// <summary>The nftables table (family inet: IPv4 and IPv6) that holds the lock.</summary>
    public const string Table = "tcpfreeze_lock";

    /// <summary>The mark of CRIU's repair-mode sockets (SOCCR_MARK), which pass the lock.</summary>
    public const int RepairMark = 0xC114;

    private static readonly TimeSpan NftTimeout = TimeSpan.FromSeconds(20);

    // "table X" creates it if missing, so the "delete" that follows always succeeds: one
    // transaction that replaces any earlier lock, or removes it.
    private static readonly string Replace = $"table inet {Table}\ndelete table inet {Table}\n";

    internal static readonly string TakeScript = Replace + $$"""
        table inet {{Table}} {
            chain input {
                type filter hook input priority filter - 10; policy drop;
                meta mark 0x{{RepairMark:x}} accept
            }
            chain output {
                type filter hook output priority filter - 10; policy drop;
                meta mark 0x{{RepairMark:x}} accept
            }
        }

        """;

    /// <summary>Locks the network namespace of process <paramref name="pid"/> (again, if it is locked already).</summary>
    /// <exception cref="HookException">nft is missing or failed; the message says what to do.</exception>
    public static void Take(int pid) => RunNft(pid, TakeScript, "lock");

    /// <summary>Unlocks the network namespace of process <paramref name="pid"/>; unlocking an unlocked namespace is no error.</summary>
    /// <exception cref="HookException">nft is missing or failed; the message says what to do.</exception>
    public static void Release(int pid) => RunNft(pid, Replace, "unlock");

    /// <summary>Whether the namespace of process <paramref name="pid"/> holds the lock table.</summary>
    public static bool IsTaken(int pid)
        => RunNftCommand(pid, ["list", "table", "inet", Table], stdin: null).ExitCode == 0;

    private static void RunNft(int pid, string script, string what)
    {
        (int code, string error) = RunNftCommand(pid, ["-f", "-"], script);
        if (code != 0)
            throw new HookException($"{what} the network namespace of PID {pid} (nft table inet {Table}): nft exited {code}: {error.ReplaceLineEndings(" ").Trim()}");
    }

    private static (int ExitCode, string Error) RunNftCommand(int pid, string[] arguments, string? stdin)
    {
        string nft = FindNft() ?? throw new HookException(
            $"the task tree of PID {pid} has a network namespace of its own, which the hook locks with nftables, but there is no 'nft' command " +
            "(on PATH, /usr/sbin or /sbin); install nftables");
        if (!File.Exists($"/proc/{pid}/ns/net"))
            throw new HookException($"cannot reach the network namespace of PID {pid} (/proc/{pid}/ns/net): the process is gone");
        var info = new ProcessStartInfo(nft)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
            info.ArgumentList.Add(argument);
        // fork() copies the calling thread's namespaces: nft starts from a thread inside the tree's namespace,
        // and everything else (the asynchronous reads, the waits) runs out here, so no thread-pool work is queued in there.
        using Process process = NamespaceThread.StartProcess(pid, info) ?? throw new HookException($"could not start {nft}");
        {
            Task<string> error = process.StandardError.ReadToEndAsync();
            Task<string> output = process.StandardOutput.ReadToEndAsync();
            if (stdin is not null)
                process.StandardInput.Write(stdin);
            process.StandardInput.Close();
            if (!process.WaitForExit(NftTimeout))
            {
                process.Kill();
                throw new HookException($"{nft} did not finish within {NftTimeout.TotalSeconds:F0} s in the network namespace of PID {pid}");
            }
            process.WaitForExit();
            _ = output.Result;
            return (process.ExitCode, error.Result);
        }
    }

    private static string? FindNft()
    {
        IEnumerable<string> folders = (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/sbin", "/sbin", "/usr/bin"]);
        return folders.Select(folder => Path.Combine(folder, "nft")).FirstOrDefault(File.Exists);
    }
}
