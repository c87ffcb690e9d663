using System.Globalization;

namespace TcpFreeze.CriuHooks;

/// <summary>Which processes hold a socket, for messages that must say whom to stop. Scans /proc: for failure paths only.</summary>
internal static class SocketHolders
{
    /// <summary>" (held by PID 123 (nginx), PID 124 (nginx))", or "" when no process is found (or the inode is 0).</summary>
    public static string Describe(ulong inode, string procRoot = "/proc")
    {
        if (inode == 0)
            return "";
        string target = $"socket:[{inode.ToString(CultureInfo.InvariantCulture)}]";
        var holders = new List<string>();
        foreach (string directory in Directory.EnumerateDirectories(procRoot))
        {
            if (!int.TryParse(Path.GetFileName(directory), NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
                continue;
            try
            {
                if (Directory.EnumerateFileSystemEntries(Path.Combine(directory, "fd")).Any(fd => new FileInfo(fd).LinkTarget == target))
                    holders.Add($"PID {pid}{DumpedTree.CommandOf(procRoot, pid)}");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // exited during the scan
            }
            if (holders.Count == 5)
                break;
        }
        return holders.Count == 0 ? "" : $" (held by {string.Join(", ", holders)})";
    }
}
