namespace TcpFreeze.Tests.Containers;

/// <summary>The files the container tests build: a busybox root filesystem, the echo server, a hook that only logs.</summary>
public static class ContainerFiles
{
    public const string EchoServerFileName = "echo_server.py";

    /// <summary>
    /// The echo server inside the containers: MigrationTests.EchoServer, except that a
    /// connection that fails (reset by a client) is closed instead of ending the server.
    /// </summary>
    public const string EchoServer = """
        import selectors, socket, sys
        host, port = sys.argv[1], int(sys.argv[2])
        family = socket.AF_INET6 if ':' in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(4096)
        listener.setblocking(False)
        selector = selectors.DefaultSelector()
        selector.register(listener, selectors.EVENT_READ)
        print('listening', flush=True)
        while True:
            for key, _ in selector.select():
                if key.fileobj is listener:
                    try:
                        conn, _ = listener.accept()
                    except OSError:
                        continue
                    conn.setblocking(True)
                    selector.register(conn, selectors.EVENT_READ)
                    continue
                try:
                    data = key.fileobj.recv(65536)
                    if data:
                        key.fileobj.sendall(data)
                        continue
                except OSError:
                    pass
                selector.unregister(key.fileobj)
                key.fileobj.close()
        """;

    /// <summary>Writes the echo server into <paramref name="folder"/> (mounted as /srv in the containers).</summary>
    public static string WriteServer(string folder)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, EchoServerFileName), EchoServer);
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
