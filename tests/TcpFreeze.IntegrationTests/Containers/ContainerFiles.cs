namespace TcpFreeze.Tests.Containers;

/// <summary>The files the container tests build: a busybox root filesystem, the echo server, a hook that only logs.</summary>
public static class ContainerFiles
{
    public const string EchoServerFileName = "echo_server.py";

    /// <summary>Writes the echo server into <paramref name="folder"/> (mounted as /srv in the containers).</summary>
    public static string WriteServer(string folder)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, EchoServerFileName), Criu.EchoServer.Script);
        return folder;
    }

    /// <summary>
    /// A root filesystem made of the static busybox (package busybox-static): /bin/busybox
    /// and /bin/sh, mount points, and /lib, /lib64 pointing into /usr, where the containers
    /// get the host's /usr read-only (python3 and its libraries for the echo server).
    /// </summary>
    public static string BuildBusyboxRootfs(string folder)
    {
        const string Busybox = "/bin/busybox";
        if (!File.Exists(Busybox))
            throw new InvalidOperationException($"{Busybox} is missing: install busybox-static (scripts/setup.sh does)");
        foreach (string sub in new[] { "bin", "dev", "proc", "sys", "etc", "tmp", "usr", "srv", "run" })
            Directory.CreateDirectory(Path.Combine(folder, sub));
        File.Copy(Busybox, Path.Combine(folder, "bin", "busybox"));
        File.CreateSymbolicLink(Path.Combine(folder, "bin", "sh"), "busybox");
        File.CreateSymbolicLink(Path.Combine(folder, "lib"), "usr/lib");
        File.CreateSymbolicLink(Path.Combine(folder, "lib64"), "usr/lib64");
        File.WriteAllText(Path.Combine(folder, "etc", "passwd"), "root:x:0:0:root:/:/bin/sh\n");
        File.WriteAllText(Path.Combine(folder, "etc", "group"), "root:x:0:\n");
        return folder;
    }

    /// <summary>
    /// An action script that only appends CRTOOLS_SCRIPT_ACTION to <paramref name="log"/>:
    /// CRIU runs it at every step and it locks nothing (the negative control).
    /// </summary>
    public static string WriteLoggingHook(string path, string log)
    {
        File.WriteAllText(path, $"#!/bin/sh\necho \"$CRTOOLS_SCRIPT_ACTION\" >> {log}\nexit 0\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }
}
